"""The configuration reference comes from the settings object and README shows the current one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from player_sessions import settings_reference as ref
from player_sessions.cli import main
from player_sessions.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def current_table() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "player_sessions.cli", "settings", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_readme_settings_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ref.section(readme) == current_table(), (
        "README's configuration table is stale: run `player-sessions settings --markdown --update README.md`"
    )


def test_every_setting_has_a_row_with_its_env_var_default_and_meaning() -> None:
    table = current_table()
    for name, field in Settings.model_fields.items():
        row = next(line for line in table.splitlines() if f"`PLAYER_SESSIONS_{name.upper()}`" in line)
        assert field.description and field.description.split("`")[0][:20] in row
    assert "| `--retention` | `PLAYER_SESSIONS_RETENTION` | `365d` |" in table
    assert "| `--no-tls-verify` | `PLAYER_SESSIONS_TLS_VERIFY` | `true` |" in table


def test_update_rewrites_only_the_marked_section(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# title\n\n{ref.BEGIN}\nold table\n{ref.END}\n\nafter\n")
    assert main(["settings", "--markdown", "--update", str(page)]) == 0
    text = page.read_text()
    assert text.startswith(f"# title\n\n{ref.BEGIN}\n| flag |") and text.endswith(f"{ref.END}\n\nafter\n")
    assert main(["settings", "--update", str(page)]) == 0  # a second run changes nothing
    assert page.read_text() == text


def test_version_flag_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "player_sessions.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    from player_sessions import __version__

    assert done.returncode == 0 and done.stdout.strip() == f"player-sessions {__version__}"
