"""Spawn Pi, frame its stdout into records, and shut it down for certain.

``open_transport`` is one async context manager that owns the process: on entry Pi runs in
its own process group (a kernel interrupt's SIGINT must not reach it, and the tools it
spawns must die with it); inside, ``transport.records`` yields parsed records, or a
``PiProtocolError`` for a line that is not one (the reader keeps going); on exit Pi is
stopped — close stdin, SIGTERM the group, SIGKILL the group — each step bounded.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from subprocess import PIPE
from typing import Any, Protocol, TypeVar

import anyio
from anyio.abc import ByteReceiveStream, Process, TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import ValidationError

from .. import variables
from .environment import for_pi
from .errors import PiNotFound, PiProtocolError
from .processes import escalation, finish_group, kill_marked, new_marker, signal_group
from .protocol import Record, parse_record

logger = logging.getLogger(__name__)

T = TypeVar("T")

STDIN_CLOSE_GRACE = 2.0
"""Seconds Pi gets to exit after stdin closes; it normally exits at once."""
SIGTERM_GRACE = 2.0
"""Seconds after SIGTERM before SIGKILL; Pi's handler disposes its runtime and exits 143."""
READ_CHUNK = 1 << 16
"""Bytes per stdout read; lines may be much longer, the framer joins chunks."""
RECORD_BUFFER = 256
"""Parsed records that may wait for the client before the reader (and so Pi) is held back."""
STDERR_TAIL_BYTES = 64 * 1024
"""How much of Pi's stderr is kept for error messages; older output is dropped."""
STDERR_UNREAD_LINES = 200
"""Stderr lines kept until someone takes them (``StderrTail.unread``); older ones drop."""
"""Set to a value unique to each Pi we start; every process Pi starts inherits it.

Pi runs its tools detached (their own session and process group), and kills them when it
exits cleanly; a Pi that was SIGKILLed or crashed cannot.  The marker lets shutdown find
and kill such strays by their environment (Linux ``/proc``; elsewhere nothing is found)."""


class LineFramer:
    """Split a byte stream into records on LF only.

    JSON strings may hold U+2028/U+2029, which ``str.splitlines`` would split on, so the
    stream stays bytes until a whole line is cut.  A trailing CR is stripped.  Chunks are
    joined once per line, so a multi-megabyte line costs O(size), not O(size²).
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        newline = chunk.find(b"\n")
        while newline != -1:
            piece = chunk[start:newline]
            if self._parts:
                self._parts.append(piece)
                piece = b"".join(self._parts)
                self._parts.clear()
            yield piece[:-1] if piece.endswith(b"\r") else piece
            start = newline + 1
            newline = chunk.find(b"\n", start)
        if start < len(chunk):
            self._parts.append(chunk[start:])

    def finish(self) -> Iterator[bytes]:
        """The last line, if the stream ended without a final LF."""
        if self._parts:
            piece = b"".join(self._parts)
            self._parts.clear()
            yield piece[:-1] if piece.endswith(b"\r") else piece


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """An anyio task group whose lone error propagates as itself.

    anyio wraps even a single error in an ``ExceptionGroup``; callers of this package catch
    ``PiError`` subclasses, so one error is unwrapped (several stay grouped).
    """
    lone: BaseException | None = None
    try:
        async with anyio.create_task_group() as tasks:
            yield tasks
    except BaseExceptionGroup as group:
        if len(group.exceptions) > 1:
            raise
        lone = group.exceptions[0]
    if lone is not None:
        # Raised outside the except block and without a context: an exception whose
        # context holds a group is shown by IPython as a group (a traceback wall), never
        # through its ``_render_traceback_``.
        lone.__context__ = None
        raise lone


def encode_command(record: Mapping[str, Any]) -> bytes:
    """One command as a JSON line.  Never ``null``: a bare null line crashes Pi."""
    if not isinstance(record, Mapping) or "type" not in record:
        raise TypeError("a Pi command is a mapping with a 'type'")
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes) -> Record | PiProtocolError:
    """Parse one line; a line that is not a record becomes an error value, not an exception."""
    try:
        return parse_record(line)
    except ValidationError as exc:
        excerpt = line[:200].decode("utf-8", "replace")
        return PiProtocolError(
            f"Pi wrote a line that is not a protocol record ({exc.error_count()} problem(s)): "
            f"{excerpt!r}"
        )


@dataclass
class StderrTail:
    """The last ``limit`` bytes of Pi's stderr, as text lines; and the whole lines nobody
    has taken yet, in ``unread`` (Pi >= 1 writes its diagnostics there in RPC mode, and
    nowhere else), from Pi's first byte on."""

    limit: int = STDERR_TAIL_BYTES
    unread: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_UNREAD_LINES))
    _chunks: deque[bytes] = field(default_factory=deque)
    _size: int = 0
    _framer: LineFramer = field(default_factory=LineFramer)

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size - len(self._chunks[0]) >= self.limit:
            self._size -= len(self._chunks.popleft())
        for line in self._framer.feed(chunk):
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.unread.append(text)

    def lines(self, count: int | None = None) -> list[str]:
        text = b"".join(self._chunks)[-self.limit :].decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
        return lines if count is None else lines[-count:]


class Connection(Protocol):
    """What a client needs of a Pi: its records in order, a way to send it commands, its
    stderr, and its exit.  ``PiTransport`` is the real one; tests also replay recordings."""

    records: MemoryObjectReceiveStream[Record | PiProtocolError]
    stderr: StderrTail

    @property
    def pid(self) -> int: ...

    async def send(self, record: Mapping[str, Any]) -> None: ...

    async def wait(self, timeout: float) -> int | None: ...


class PiTransport:
    """A running Pi: records out, command lines in, stderr kept aside."""

    def __init__(
        self,
        process: Process,
        records: MemoryObjectReceiveStream[Record | PiProtocolError],
        stderr: StderrTail,
    ) -> None:
        self.process = process
        self.records = records
        self.stderr = stderr
        self.stderr_read = anyio.Event()
        """Set once Pi's stderr has been read to its end (Pi has closed it: it exited)."""
        self._write_lock = anyio.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, record: Mapping[str, Any]) -> None:
        """Write one command.  Raises ``anyio.BrokenResourceError`` if Pi's stdin is gone."""
        line = encode_command(record)
        stdin = self.process.stdin
        if stdin is None:
            raise anyio.BrokenResourceError
        async with self._write_lock:
            await stdin.send(line)

    async def wait(self, timeout: float) -> int | None:
        """Pi's exit code, or ``None`` if it still runs after ``timeout`` seconds.  Once it
        has exited, its stderr is read to the end too (within the same time), so that what
        it said last is in ``stderr`` for the error message."""
        deadline = anyio.current_time() + timeout
        returncode = await _exited_within(self.process, timeout)
        if returncode is not None:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await self.stderr_read.wait()
        return returncode


@asynccontextmanager
async def open_transport(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> AsyncIterator[PiTransport]:
    """Start Pi with ``argv`` and yield its transport; stop it for certain on exit.

    ``name`` is how errors refer to Pi (the configured path); it defaults to ``argv[0]``.
    ``env`` (default: ours) is given without what is not meant for Pi (``environment``).
    """
    marker = new_marker()
    child_env = {**for_pi(os.environ if env is None else env), variables.OWNER: marker}
    try:
        process = await anyio.open_process(
            list(argv),
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            cwd=cwd,
            env=child_env,
            start_new_session=True,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if cwd is not None and not os.path.isdir(cwd):  # noqa: ASYNC240 - error path only
            reason = f"its working directory {cwd} does not exist"
        elif exc.filename is not None and str(exc.filename) != (name or argv[0]):
            reason = f"{reason}: {exc.filename}"
        raise PiNotFound(name or argv[0], reason) from exc

    send_records, receive_records = anyio.create_memory_object_stream[Record | PiProtocolError](
        RECORD_BUFFER
    )
    stderr = StderrTail()
    transport = PiTransport(process, receive_records, stderr)
    # The program only: Pi's arguments may carry a key (``--api-key``).
    logger.info("started Pi (pid %d): %s", process.pid, name or argv[0])
    try:
        async with task_group() as tasks:
            assert process.stdout is not None
            assert process.stderr is not None
            tasks.start_soon(_read_records, process.stdout, send_records)
            tasks.start_soon(_read_stderr, process.stderr, stderr, transport.stderr_read)
            try:
                yield transport
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
                    kill_marked(variables.OWNER, marker)
                logger.info("stopped Pi (pid %d): exit code %s", process.pid, process.returncode)
                tasks.cancel_scope.cancel()
    finally:
        receive_records.close()


async def _read_records(
    stdout: ByteReceiveStream,
    sink: MemoryObjectSendStream[Record | PiProtocolError],
) -> None:
    framer = LineFramer()
    async with sink:
        try:
            while True:
                chunk = await stdout.receive(READ_CHUNK)
                for line in framer.feed(chunk):
                    if line:
                        await send_without_checkpoint(sink, decode_line(line))
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        for line in framer.finish():
            if line:
                with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    await sink.send(decode_line(line))


async def send_without_checkpoint(sink: MemoryObjectSendStream[T], item: T) -> None:
    """Send without a checkpoint while the buffer has room.

    anyio's ``send`` yields to the event loop on every item; for Pi's thousands of small
    records that loop round trip costs more than parsing them.  This still waits (and so
    applies backpressure) once the buffer is full.
    """
    try:
        sink.send_nowait(item)
    except anyio.WouldBlock:
        await sink.send(item)


async def receive_without_checkpoint(source: MemoryObjectReceiveStream[T]) -> T:
    """Receive without a checkpoint when an item is already buffered (see
    ``send_without_checkpoint``)."""
    try:
        return source.receive_nowait()
    except anyio.WouldBlock:
        return await source.receive()


async def _read_stderr(stream: ByteReceiveStream, tail: StderrTail, read: anyio.Event) -> None:
    # Pi blocks if its stderr pipe fills, so stderr is drained for as long as Pi runs.
    try:
        with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            while True:
                tail.add(await stream.receive(READ_CHUNK))
    finally:
        read.set()


async def _stop(process: Process) -> None:
    """Close stdin (Pi exits on its own), then the group's escalation; every wait bounded."""
    if process.stdin is not None:
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await process.stdin.aclose()
    await _exited_within(process, STDIN_CLOSE_GRACE)
    for sig, wait in escalation(SIGTERM_GRACE):
        if process.returncode is not None:
            break
        signal_group(process.pid, sig)
        await _exited_within(process, wait)
    finish_group(process.pid)


async def _exited_within(process: Process, seconds: float) -> int | None:
    with anyio.move_on_after(seconds):
        return await process.wait()
    return process.returncode
