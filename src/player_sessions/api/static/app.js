// player-sessions dashboard: plain JS over the public API, no build step, no dependencies.
// Everything the API returns is put into the page with textContent / attributes, never as HTML.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const TOP = 25; // bars shown before "Show all countries"
  const NUM = new Intl.NumberFormat("en-US");
  const $ = (id) => document.getElementById(id);

  const state = { hours: 24, counts: null, showAll: false, country: null, next: null, player: null };

  // --- the API -------------------------------------------------------------------------------------

  function apiKey() {
    return sessionStorage.getItem("player-sessions-key") || "";
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(path, { headers });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      if (response.status === 401 || response.status === 403) $("key-box").open = true;
      const why = body && body.error ? body.error : response.statusText;
      throw new Error(`${response.status}: ${why}`);
    }
    return body;
  }

  function showError(id, error) {
    const p = $(id);
    p.hidden = !error;
    p.textContent = error ? String(error.message || error) : "";
  }

  // --- formatting ----------------------------------------------------------------------------------

  const fmt = (n) => NUM.format(n);
  const utc = (iso) => iso.replace("T", " ").replace(/(\.\d+)?Z$/, "");

  function duration(seconds) {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
    return `${s} s`;
  }

  function windowName(hours) {
    if (hours % 24 === 0 && hours >= 48) return `${hours / 24} days`;
    return hours === 1 ? "1 hour" : `${hours} hours`;
  }

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- starts per country ---------------------------------------------------------------------------

  async function loadCounts(hours) {
    state.hours = hours;
    for (const b of document.querySelectorAll("#windows button[data-hours]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.hours) === hours));
    }
    $("chart").setAttribute("aria-busy", "true");
    try {
      const counts = await api(`/session-starts?hours=${encodeURIComponent(hours)}`);
      state.counts = counts;
      showError("counts-error", null);
      drawCounts();
      if (state.country) await loadStarts(state.country, true);
    } catch (error) {
      showError("counts-error", error);
    } finally {
      $("chart").setAttribute("aria-busy", "false");
      $("chart").dataset.hours = String(hours);
    }
    saveHash();
  }

  function sortedCountries(countries) {
    return Object.entries(countries).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  function drawCounts() {
    const counts = state.counts;
    const rows = sortedCountries(counts.countries);
    $("total").textContent = fmt(counts.total);
    $("total").dataset.total = String(counts.total);
    $("country-count").textContent = fmt(rows.length);
    $("window-label").textContent = `last ${windowName(counts.hours)} (${utc(counts.from)} – ${utc(counts.to)} UTC)`;

    const chart = $("chart");
    chart.replaceChildren();
    if (!rows.length) {
      chart.append(el("p", { class: "empty" }, "No session starts in this window."));
      $("show-all").hidden = true;
      return;
    }
    const shown = state.showAll ? rows : rows.slice(0, TOP);
    $("show-all").hidden = rows.length <= TOP;
    $("show-all").textContent = state.showAll ? `Show top ${TOP}` : `Show all ${rows.length} countries`;

    const rowH = 22, labelW = 40, numW = 120, width = 720;
    const barW = width - labelW - numW;
    const max = rows[0][1];
    const root = svg("svg", { viewBox: `0 0 ${width} ${shown.length * rowH}`, role: "list",
                              "aria-label": "session starts per country" });
    shown.forEach(([country, n], i) => {
      const y = i * rowH;
      const w = Math.max(1, (n / max) * barW);
      const g = svg("g", { class: "bar", "data-country": country, "data-count": n, tabindex: 0,
                           role: "listitem", "aria-label": `${country}: ${fmt(n)} starts` });
      if (country === state.country) g.classList.add("active");
      g.append(svg("title", {}, `${country}: ${fmt(n)} starts — click for the latest`));
      g.append(svg("rect", { class: "hit", x: 0, y, width, height: rowH }));
      g.append(svg("text", { class: "code", x: 0, y: y + rowH / 2 }, country));
      g.append(svg("rect", { class: "fill", x: labelW, y: y + 3, width: w, height: rowH - 6, rx: 2 }));
      g.append(svg("text", { class: "count", x: labelW + w + 6, y: y + rowH / 2 }, fmt(n)));
      const share = counts.total ? ((100 * n) / counts.total).toFixed(1) : "0";
      g.append(svg("text", { class: "share", x: width, y: y + rowH / 2, "text-anchor": "end" }, `${share} %`));
      g.addEventListener("click", () => loadStarts(country));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          loadStarts(country);
        }
      });
      root.append(g);
    });
    chart.append(root);
  }

  // --- a country's latest starts -------------------------------------------------------------------

  async function loadStarts(country, fresh = true) {
    state.country = country;
    for (const g of document.querySelectorAll("#chart .bar")) {
      g.classList.toggle("active", g.dataset.country === country);
    }
    $("latest-country").textContent = `in ${country}, last ${windowName(state.hours)}`;
    $("latest-country").dataset.country = country;
    const tbody = document.querySelector("#starts-table tbody");
    const params = new URLSearchParams({ limit: "20" });
    if (fresh || !state.next) params.set("hours", String(state.hours));
    else params.set("cursor", state.next);
    try {
      const page = await api(`/session-starts/${encodeURIComponent(country)}?${params}`);
      showError("latest-error", null);
      if (fresh) tbody.replaceChildren();
      for (const s of page.starts) {
        const tr = el("tr", { "data-session-id": s.session_id });
        tr.append(el("td", {}, utc(s.ts)));
        const who = el("td", { class: "id" });
        const link = el("button", { type: "button", class: "link", title: "look this player up" }, s.player_id);
        link.addEventListener("click", () => {
          $("player-id").value = s.player_id;
          loadPlayer(s.player_id);
        });
        who.append(link);
        tr.append(who, el("td", { class: "id", title: s.session_id }, s.session_id));
        tbody.append(tr);
      }
      if (fresh && !page.starts.length) {
        const tr = el("tr");
        tr.append(el("td", { colspan: "3", class: "muted" }, "No starts in this window."));
        tbody.append(tr);
      }
      state.next = page.next;
      $("starts-more").hidden = !page.next;
    } catch (error) {
      showError("latest-error", error);
    }
    saveHash();
  }

  // --- player lookup -------------------------------------------------------------------------------

  async function loadPlayer(playerId) {
    state.player = playerId;
    const tbody = document.querySelector("#sessions-table tbody");
    try {
      const answer = await api(`/players/${encodeURIComponent(playerId)}/sessions?limit=20`);
      showError("player-error", null);
      tbody.replaceChildren();
      let total = 0;
      for (const s of answer.sessions) {
        total += s.duration_seconds;
        const tr = el("tr", { "data-session-id": s.session_id, "data-duration": s.duration_seconds });
        tr.append(el("td", {}, utc(s.start)), el("td", {}, utc(s.end)),
                  el("td", { class: "num" }, duration(s.duration_seconds)), el("td", {}, s.country || "–"),
                  el("td", { class: "id", title: s.session_id }, s.session_id));
        tbody.append(tr);
      }
      const summary = $("player-summary");
      summary.hidden = false;
      summary.textContent = answer.sessions.length
        ? `${answer.sessions.length} complete session${answer.sessions.length === 1 ? "" : "s"} of ` +
          `${answer.player_id}, ${duration(total)} in total`
        : `No complete sessions for ${answer.player_id} in the retention.`;
      summary.dataset.count = String(answer.sessions.length);
    } catch (error) {
      tbody.replaceChildren();
      $("player-summary").hidden = true;
      showError("player-error", error);
    }
    saveHash();
  }

  // --- health, key, wiring, deep links (#hours=24&country=FI&player=p1) --------------------------------

  async function health() {
    const pill = $("health");
    try {
      const r = await fetch("/health");
      pill.textContent = r.ok ? "Cassandra ok" : "Cassandra unavailable";
      pill.className = `pill ${r.ok ? "ok" : "bad"}`;
    } catch (_) {
      pill.textContent = "service unreachable";
      pill.className = "pill bad";
    }
  }

  function saveHash() {
    const p = new URLSearchParams({ hours: String(state.hours) });
    if (state.country) p.set("country", state.country);
    if (state.player) p.set("player", state.player);
    history.replaceState(null, "", `#${p}`);
  }

  function init() {
    for (const b of document.querySelectorAll("#windows button[data-hours]")) {
      b.addEventListener("click", () => loadCounts(Number(b.dataset.hours)));
    }
    $("custom-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const hours = Number($("custom-value").value) * Number($("custom-unit").value);
      if (hours > 0) loadCounts(hours);
    });
    $("show-all").addEventListener("click", () => {
      state.showAll = !state.showAll;
      drawCounts();
    });
    $("starts-more").addEventListener("click", () => loadStarts(state.country, false));
    $("player-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const id = $("player-id").value.trim();
      if (id) loadPlayer(id);
    });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem("player-sessions-key", $("api-key").value.trim());
      $("key-box").open = false;
      loadCounts(state.hours);
    });
    $("key-clear").addEventListener("click", () => {
      sessionStorage.removeItem("player-sessions-key");
      $("api-key").value = "";
    });

    const p = new URLSearchParams(location.hash.slice(1));
    const hours = Number(p.get("hours")) || 24;
    state.country = p.get("country");
    health();
    loadCounts(hours);
    if (p.get("player")) {
      $("player-id").value = p.get("player");
      loadPlayer(p.get("player"));
    }
  }

  document.addEventListener("DOMContentLoaded", init);
})();
