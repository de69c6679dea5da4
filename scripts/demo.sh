#!/usr/bin/env bash
# `make demo`: a local Cassandra, a month of generated November 2016 data for a few thousand players,
# loaded through the public API of a service whose clock is frozen at 2016-12-01, then three queries.
set -euo pipefail
cd "$(dirname "$0")/.."
PS=.venv/bin/player-sessions
PORT=${DEMO_PORT:-8010}
CLOCK=2016-12-01T00:00:00Z
URL=http://127.0.0.1:$PORT
mkdir -p .demo

$PS db start
if [ ! -s .demo/events.jsonl.gz ]; then
  $PS generate --players 3000 --days 30 --until "$CLOCK" --seed 1 \
    -o .demo/events.jsonl.gz --truth .demo/truth.json
fi
if [ -s .demo/serve.pid ] && kill -0 "$(cat .demo/serve.pid)" 2>/dev/null; then
  echo "demo service already running (pid $(cat .demo/serve.pid))"
else
  $PS serve --port "$PORT" --keyspace player_sessions_demo --clock "$CLOCK" \
    > .demo/serve.log 2>&1 &
  echo $! > .demo/serve.pid
fi
for _ in $(seq 1 120); do curl -sf "$URL/health" >/dev/null && break; sleep 0.5; done
curl -sf "$URL/health" >/dev/null || { echo "service did not start; see .demo/serve.log" >&2; exit 1; }
$PS load .demo/events.jsonl.gz --url "$URL"

PLAYER=$(.venv/bin/python - <<'PY'
import json
truth = json.load(open(".demo/truth.json"))
print(max(truth["players"], key=lambda p: len(truth["players"][p])))
PY
)
# Pretty-print, cut to 40 lines inside Python: `| head` would close the pipe early, and under
# pipefail the writer's SIGPIPE would fail the demo.
show() {
  .venv/bin/python -c 'import json, sys
lines = json.dumps(json.load(sys.stdin), indent=2).splitlines()
print("\n".join(lines[:40]) + ("\n  ... (%d more lines)" % (len(lines) - 40) if len(lines) > 40 else ""))'
}
run() { echo; echo "\$ $*"; "$@" | show; }
run curl -s "$URL/players/$PLAYER/sessions?limit=3"
run curl -s "$URL/session-starts?hours=24"
run curl -s "$URL/session-starts/US?hours=1&limit=3"
echo
echo "Dashboard (the demo's clock: $CLOCK): $URL/#hours=24&country=US&player=$PLAYER"
echo "The demo service keeps running on $URL (docs: $URL/docs)."
echo "Stop it with: kill \$(cat .demo/serve.pid); the node with: $PS db stop"
