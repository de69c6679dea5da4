"""Unknown `PLAYER_SESSIONS_*` environment variables: the settings model ignores them, so a mistyped
name would silently leave its setting at the default. `serve` and `migrate` name each one in a
warning, with the setting it most likely meant, and carry on."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from player_sessions.config import Settings
from player_sessions.settings_flags import ENV_PREFIX, env_name

# Variables of the project that share the prefix without being settings. PLAYER_SESSIONS_PASSWORD is
# also read by the local Cassandra launcher, but it is a setting too, so it needs no entry here.
NOT_SETTINGS: Mapping[str, str] = {
    "PLAYER_SESSIONS_API_KEY": "the API key `player-sessions load` sends",
    "PLAYER_SESSIONS_CHROMIUM": "the browser the dashboard tests drive",
}

# How alike (difflib's ratio of the names after the prefix) a setting must be to be suggested.
_CLOSE = 0.75


@dataclass(frozen=True)
class UnknownVariable:
    name: str
    suggestion: str | None  # the setting's variable it most likely meant


def setting_variables() -> list[str]:
    return [env_name(name) for name in Settings.model_fields]


def unknown_variables(names: Iterable[str]) -> list[UnknownVariable]:
    """The prefixed names among ``names`` that no setting reads, sorted; case-insensitive, as the model."""
    known = setting_variables()
    accepted = set(known) | set(NOT_SETTINGS)
    suffixes = [variable.removeprefix(ENV_PREFIX) for variable in known]
    found = []
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in accepted:
            continue
        # Compared without the shared prefix, which would make every pair look alike.
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=_CLOSE)
        found.append(UnknownVariable(name, ENV_PREFIX + close[0] if close else None))
    return found


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """One warning line per unknown prefixed variable in ``environ``."""
    lines = []
    for unknown in unknown_variables(environ):
        hint = (
            f"did you mean {unknown.suggestion}?"
            if unknown.suggestion
            else "`player-sessions settings` lists the settings"
        )
        lines.append(f"warning: {unknown.name} is not a setting and is ignored; {hint}")
    return lines
