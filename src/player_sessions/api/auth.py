"""Optional API keys (`--api-keys-file`): who may do what.

The keys file is UTF-8 text, one key per line as `name:key`, optionally followed (after whitespace) by
the key's scopes, separated by commas:

    # comments and blank lines are ignored
    loader:Zp4V7m0cJ8s1nQx2w9Rk3tYb ingest
    dashboard:sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 read,metrics
    admin:Qm2x8VbN4k7Lp0sT6wYc1rHe ingest,read,erase,metrics

- `name`: 1-64 of `A-Z a-z 0-9 . _ -`, unique; it is what the logs show (`key=loader`), never the key.
- `key`: 16-256 of `A-Z a-z 0-9 . _ ~ + / = -` (the characters of a Bearer token, e.g. from
  `openssl rand -base64 24` or `python -c 'import secrets; print(secrets.token_urlsafe(24))'`), or
  `sha256:` followed by the key's SHA-256 in hex, so the file need not hold the key itself.
- scopes: `ingest` (POST /events), `read` (the GET routes, when --protect-reads closes them), `erase`
  (DELETE /players/{id}), `metrics` (GET /metrics, when --protect-reads or --protect-metrics closes
  it). A key used outside its scopes gets 403. A line without scopes may do everything (the meaning
  such files had before scopes existed); `serve` logs a warning naming those keys.

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
_SCOPE_SEPARATORS = re.compile(r"[\s,]+")
SCOPES = ("ingest", "read", "erase", "metrics")
ALL_SCOPES = frozenset(SCOPES)
OPEN_PATHS = frozenset({"/health"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The API router's writes; everything else it serves is a read.
_SCOPE_OF_METHOD = {"POST": "ingest", "DELETE": "erase"}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "API keys are on and no `Authorization: Bearer` key was sent"},
    403: {"model": ErrorOut, "description": "the key is not in --api-keys-file, or lacks the route's scope"},
}


class ApiKeysError(ValueError):
    """The keys file is missing or malformed (the message names the line, never the key)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # sha256 of the key
    scopes: frozenset[str]
    scoped: bool  # False: the line named no scopes, so the key may do everything


@dataclass(frozen=True)
class ApiKeys:
    keys: tuple[ApiKey, ...]

    def find(self, presented: str) -> ApiKey | None:
        """The key `presented` is, or None. Compares with every digest, always."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def match(self, presented: str) -> str | None:
        """The name of the key `presented` is, or None."""
        key = self.find(presented)
        return key.name if key is not None else None

    @property
    def names(self) -> list[str]:
        return [key.name for key in self.keys]

    @property
    def unscoped(self) -> list[str]:
        return [key.name for key in self.keys if not key.scoped]


def _split_secret(rest: str) -> tuple[str, str]:
    """`key scopes` -> (key, scopes): a key holds no whitespace, so the first whitespace ends it."""
    parts = rest.strip().split(maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (rest.strip(), "")


def _parse_scopes(text: str, where: str) -> frozenset[str]:
    scopes = frozenset(s for s in _SCOPE_SEPARATORS.split(text) if s)
    unknown = sorted(scopes - ALL_SCOPES)
    if unknown:
        # Named only when too short to be a key (a key split by a stray space must not reach the logs).
        word = f" {unknown[0]!r}" if len(unknown[0]) < 16 else ""
        raise ApiKeysError(f"{where}: unknown scope{word} (scopes: {', '.join(SCOPES)})")
    return scopes


def parse_api_keys(text: str, source: str = "api keys file") -> ApiKeys:
    keys: list[ApiKey] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        name = name.strip()
        # A key holds no whitespace, so whatever follows the first whitespace after it is the scopes.
        secret, scope_text = _split_secret(rest)
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
            raise ApiKeysError(
                f"{where} ({name}): the key must be 16-256 of A-Z a-z 0-9 . _ ~ + / = - "
                "or sha256:<64 hex digits>"
            )
        if digest in digests:
            raise ApiKeysError(f"{where} ({name}): the same key as an earlier line")
        scopes = _parse_scopes(scope_text, f"{where} ({name})")
        names.add(name)
        digests.add(digest)
        keys.append(ApiKey(name, digest, scopes or ALL_SCOPES, scoped=bool(scopes)))
    if not keys:
        raise ApiKeysError(f"{source}: no keys (one `name:key` per line)")
    return ApiKeys(tuple(keys))


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
    if request.method in READ_METHODS and not request.app.state.protect_reads:
        return
    _require(request, credentials, _SCOPE_OF_METHOD.get(request.method, "read"))


async def authorize_metrics(request: Request, credentials: BearerDep) -> None:
    """`/metrics` stays open unless --protect-reads or --protect-metrics closes it."""
    if not (request.app.state.protect_reads or request.app.state.protect_metrics):
        return
    _require(request, credentials, "metrics")


def _require(request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str) -> None:
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    if keys is None or request.url.path in OPEN_PATHS:
        return
    if credentials is None:
        raise Unauthorized("authorization", "send `Authorization: Bearer <api key>`")
    key = keys.find(credentials.credentials)
    if key is None:
        raise Forbidden("authorization", "the API key is not valid")
    request.state.api_key_name = key.name
    if scope not in key.scopes:
        raise Forbidden("authorization", f"the API key {key.name!r} lacks the `{scope}` scope")
