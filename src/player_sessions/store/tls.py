"""TLS to Cassandra: the client's SSL context, and a failed handshake told apart from a node down.

A node that is down or booting is retried; a handshake that fails (a certificate not signed by
--tls-ca-file, a certificate that does not name the address connected to, TLS off on the node) fails
the same way on every retry, so it stops `serve` at once with what to check.
"""

from __future__ import annotations

import ssl
from typing import Any

from player_sessions.store.config import StoreConfig
from player_sessions.store.errors import StoreTlsFailed

# How the handshake's failures read once the driver has wrapped them in its connection errors.
_HANDSHAKE_SIGNS = (
    "CERTIFICATE_VERIFY_FAILED",
    "certificate verify failed",
    "[SSL",
    "SSLError",
    "WRONG_VERSION_NUMBER",
    "EOF occurred in violation of protocol",
    "hostname mismatch",
    "IP address mismatch",
)


def client_context(config: StoreConfig) -> ssl.SSLContext | None:
    """None without --tls; verification of the certificate and of the host name is on by default (the
    driver checks the name against the address it connects to, so the certificate must name it)."""
    if not config.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=config.tls_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise StoreTlsFailed(f"cannot use --tls-ca-file {config.tls_ca_file}: {exc}") from exc
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def raise_if_handshake_failed(errors: dict[Any, Any] | None, config: StoreConfig) -> None:
    """`errors`: the driver's NoHostAvailable.errors (per host, the last failure)."""
    if not config.tls:
        return
    for error in (errors or {}).values():
        text = f"{type(error).__name__}: {error}"
        if isinstance(error, ssl.SSLError) or any(sign in text for sign in _HANDSHAKE_SIGNS):
            ca = f"--tls-ca-file {config.tls_ca_file}" if config.tls_ca_file else "the system's CAs"
            raise StoreTlsFailed(
                f"TLS handshake with Cassandra at {config.contact_points} failed: {error}; check that "
                f"{ca} holds the CA that signed the node's certificate, that the certificate names the "
                "address you connect to, and that the node has client encryption on"
            )
