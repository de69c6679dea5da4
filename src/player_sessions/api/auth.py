"""Optional API keys (`--api-keys-file`): who may write, and with `--protect-reads` who may read.

The keys file is UTF-8 text, one key per line as `name:key`:

    # comments and blank lines are ignored
    loader:Zp4V7m0cJ8s1nQx2w9Rk3tYb
    dashboard:sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

- `name`: 1-64 of `A-Z a-z 0-9 . _ -`, unique; it is what the logs show (`key=loader`), never the key.
- `key`: 16-256 of `A-Z a-z 0-9 . _ ~ + / = -` (the characters of a Bearer token, e.g. from
  `openssl rand -base64 24` or `python -c 'import secrets; print(secrets.token_urlsafe(24))'`), or
  `sha256:` followed by the key's SHA-256 in hex, so the file need not hold the key itself.

Only SHA-256 digests are kept in memory; a presented key is hashed and compared with every digest by
`hmac.compare_digest` (no early exit, so timing does not tell which key came close). Clients send
`Authorization: Bearer <key>`: none (or another scheme) is 401, a key that is not in the file 403.
POST and DELETE always need a key when a file is set; GET only with `--protect-reads`; `/health`,
`/health/live` and `/health/ready` (for load balancers and orchestrators) and the dashboard's static
files never do. Change the file and restart `serve`
(or its workers) to rotate keys: add the new key, move clients, remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from player_sessions.api.errors import Forbidden, Unauthorized
from player_sessions.api.models import ErrorOut

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}", re.ASCII)
_DIGEST = re.compile(r"sha256:([0-9a-fA-F]{64})", re.ASCII)
OPEN_PATHS = frozenset({"/health"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "API keys are on and no `Authorization: Bearer` key was sent"},
    403: {"model": ErrorOut, "description": "the key is not in --api-keys-file"},
}


class ApiKeysError(ValueError):
    """The keys file is missing or malformed (the message names the line, never the key)."""


@dataclass(frozen=True)
class ApiKeys:
    entries: tuple[tuple[str, bytes], ...]  # (name, sha256 digest)

    def match(self, presented: str) -> str | None:
        """The name of the key `presented` is, or None. Compares with every digest, always."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: str | None = None
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.entries]


def parse_api_keys(text: str, source: str = "api keys file") -> ApiKeys:
    entries: list[tuple[str, bytes]] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        name, secret = name.strip(), secret.strip()
        where = f"{source}, line {number}"
        if not sep or _NAME.fullmatch(name) is None:
            raise ApiKeysError(f"{where}: expected `name:key` with a name of 1-64 letters, digits, . _ -")
        if name in names:
            raise ApiKeysError(f"{where}: the name {name!r} is used twice")
        hashed = _DIGEST.fullmatch(secret)
        if hashed is not None:
            digest = bytes.fromhex(hashed.group(1))
        elif _KEY.fullmatch(secret) is not None:
            digest = hashlib.sha256(secret.encode("ascii")).digest()
        else:
            raise ApiKeysError(f"{where} ({name}): the key must be 16-256 of A-Z a-z 0-9 . _ ~ + / = - "
                               "or sha256:<64 hex digits>")
        if digest in digests:
            raise ApiKeysError(f"{where} ({name}): the same key as an earlier line")
        names.add(name)
        digests.add(digest)
        entries.append((name, digest))
    if not entries:
        raise ApiKeysError(f"{source}: no keys (one `name:key` per line)")
    return ApiKeys(tuple(entries))


def load_api_keys(path: str | Path) -> ApiKeys:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeysError(f"cannot read the api keys file {path}: {exc}") from exc
    return parse_api_keys(text, str(path))


bearer = HTTPBearer(auto_error=False, description="an API key from --api-keys-file (when one is set)")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def authorize(request: Request, credentials: BearerDep) -> None:
    """Router dependency: runs before the route reads the body, so a refused POST costs nothing."""
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    if keys is None or request.url.path in OPEN_PATHS:
        return
    if request.method in READ_METHODS and not request.app.state.protect_reads:
        return
    if credentials is None:
        raise Unauthorized("authorization", "send `Authorization: Bearer <api key>`")
    name = keys.match(credentials.credentials)
    if name is None:
        raise Forbidden("authorization", "the API key is not valid")
    request.state.api_key_name = name
