"""Connection limits uvicorn lacks, as its httptools protocol with three checks added: a deadline for a
request's headers (a connection that opens and never finishes its headers is closed), a cap on the
header bytes, and a cap on the connections one worker keeps open. Half-open connections otherwise
hold a file descriptor each for as long as the client likes, and run the process out of them long
before it runs out of CPU.

uvicorn builds the protocol itself, once per connection, from an import string, so the limits are read
from the settings in the environment (how `serve` hands every setting to its workers).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "player_sessions.api.connections:LimitedHttpToolsProtocol"


@cache
def _limits() -> tuple[float, int, int]:
    from player_sessions.config import Settings

    settings = Settings()
    return settings.header_timeout, settings.max_header_bytes, settings.max_connections


def _answer(status: bytes, reason: str) -> bytes:
    text = reason.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\n\r\n" + text
    )


class HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes, self.max_connections = _limits()
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._head_bytes = 0
        self._reading_headers = True
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(
                _answer(b"503 Service Unavailable", f"over {self.max_connections} connections: retry later")
            )
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Counted per chunk: a chunk may also hold the start of the body, so this applies only to what
        # arrived while the headers were still incomplete after it (a head trickled in without end).
        # A head that arrives whole is measured by the parser's callbacks below.
        if (
            self._reading_headers
            and self._header_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    def on_url(self, url: bytes) -> None:
        self._measure_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._measure_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _measure_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._head_too_large = True
            raise HeadTooLarge  # the parser turns it into a parse error: send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self.transport.write(
            _answer(
                b"431 Request Header Fields Too Large", f"request head over {self.max_header_bytes} bytes"
            )
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._head_bytes = 0
        if self._header_deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle between requests, the keep-alive timeout applies; the next request's headers arm the
        # deadline again (on_message_begin).
        self._reading_headers = True
        self._header_bytes = 0

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            self.transport.write(
                _answer(
                    b"408 Request Timeout", f"no complete request headers within {self.header_timeout:g}s"
                )
            )
            self.transport.close()
