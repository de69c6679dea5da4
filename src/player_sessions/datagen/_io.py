"""Opening JSON-lines files by name (plain, gzip, bzip2, or ``-``), and a progress line for stderr.

Compression is chosen by the file name when writing and by the magic bytes when reading, so a
renamed file still reads correctly.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal, Protocol, TextIO

__all__ = [
    "ByteSink",
    "CountingReader",
    "Progress",
    "compression_for_name",
    "format_duration",
    "open_input",
    "open_output",
]

Compression = Literal["none", "gzip", "bzip2"]


class ByteSink(Protocol):
    """Anything bytes can be written to: a binary file, ``sys.stdout.buffer``, ``io.BytesIO``."""

    def write(self, data: bytes, /) -> object: ...


_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"


def compression_for_name(name: str | os.PathLike[str]) -> Compression:
    lowered = os.fspath(name).lower()
    if lowered.endswith(".gz"):
        return "gzip"
    if lowered.endswith(".bz2"):
        return "bzip2"
    return "none"


class _ThreadedWriter(io.RawIOBase):
    """Hands chunks to a thread that compresses and writes them.

    zlib and bz2 release the GIL while compressing, so the generator keeps producing on one core
    while another compresses; bz2 is otherwise the bottleneck. The queue is bounded, so a slow disk
    or compressor back-pressures the producer instead of buffering the whole output.
    """

    def __init__(self, target: io.BufferedIOBase, closers: contextlib.ExitStack) -> None:
        super().__init__()
        self._target = target
        self._closers = closers
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="datagen-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:
                try:
                    self._target.write(chunk)
                except BaseException as exc:  # re-raised in the producer thread
                    self._error = exc

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        # Copy: the caller may reuse a bytearray or memoryview after we return.
        self._queue.put(bytes(data))
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        self._queue.put(None)
        self._thread.join()
        try:
            self._closers.close()
        finally:
            super().close()
        if self._error is not None:
            raise self._error


@contextlib.contextmanager
def open_output(target: str | os.PathLike[str]) -> Iterator[ByteSink]:
    """A binary stream writing to ``target``, compressed by its suffix; ``-`` is stdout.

    Compressed output is byte-identical for identical input: the gzip header gets no file name and
    mtime 0.
    """
    if os.fspath(target) == "-":
        out: IO[bytes] = sys.stdout.buffer
        try:
            yield out
        finally:
            out.flush()
        return
    path = Path(target)
    kind = compression_for_name(path)
    closers = contextlib.ExitStack()
    raw = closers.enter_context(path.open("wb"))
    stream: io.BufferedIOBase
    if kind == "gzip":
        stream = closers.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
    elif kind == "bzip2":
        stream = closers.enter_context(bz2.BZ2File(raw, "wb"))
    else:
        stream = raw
    writer = _ThreadedWriter(stream, closers)
    try:
        yield writer
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise
    writer.close()


class CountingReader(io.RawIOBase):
    """Counts the bytes read from the underlying (possibly compressed) file, for progress."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n


@contextlib.contextmanager
def open_input(
    source: str | os.PathLike[str], stdin: IO[bytes] | None = None
) -> Iterator[tuple[io.BufferedIOBase, CountingReader, int | None]]:
    """``(lines, counter, size)``: a decompressed binary stream, the raw-byte counter, and the raw size.

    ``size`` is None for stdin. The stream is read lazily, never whole.
    """
    with contextlib.ExitStack() as stack:
        size: int | None
        if os.fspath(source) == "-":
            raw: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
            size = None
        else:
            path = Path(source)
            raw = stack.enter_context(path.open("rb"))
            size = path.stat().st_size
        counter = CountingReader(raw)
        buffered = io.BufferedReader(counter, buffer_size=1 << 16)
        magic = buffered.peek(3)[:3]
        stream: io.BufferedIOBase
        if magic.startswith(_GZIP_MAGIC):
            stream = stack.enter_context(gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif magic.startswith(_BZIP2_MAGIC):
            stream = stack.enter_context(bz2.BZ2File(buffered, "rb"))
        else:
            stream = buffered
        yield stream, counter, size


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a new line every few seconds in logs.

    ``update`` is cheap to call often; the text is only built when it will be printed.
    """

    def __init__(
        self,
        enabled: bool,
        stream: TextIO | None = None,
        messages: bool = True,
        tty_interval: float = 0.25,
        log_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._messages = messages
        self._tty = enabled and _isatty(self._stream)
        self._interval = tty_interval if self._tty else log_interval
        self._clock = clock
        self._next = clock() + self._interval
        self._width = 0

    def update(self, text: Callable[[], str], force: bool = False) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if not force and now < self._next:
            return
        self._next = now + self._interval
        line = text()
        if self._tty:
            # Pad so a shorter line fully covers the previous one.
            self._stream.write("\r" + line.ljust(self._width))
            self._width = max(self._width, len(line))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        """A permanent line, printed above the progress line (unless messages are off)."""
        if not self._messages:
            return
        if self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self._stream.write(text + "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
