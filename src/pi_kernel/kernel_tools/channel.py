"""The kernel's end of the kernel tools: a Unix socket only this kernel's own Pi can use.

Each Pi process gets a channel of its own: a socket in a fresh 0700 folder inside
pi-kernel's private runtime directory, and a random secret.  The secret never enters an
environment (``/proc/<pid>/environ`` keeps a process's initial environment for anyone of
the same user to read, Pi's bash included): it waits in a 0600 file beside the socket,
which Pi's extension (``extension.js``) reads and removes when it loads; Pi's environment
carries only the two paths.  A caller must be this user (the folder's mode, and the peer's
credentials where the system reports them) and send the secret with every request;
anything else is refused and counted.

The wire: one JSON request line per connection, one JSON reply line back.
``{"secret", "op": "offer"}`` asks which tools to offer for the run about to start, and
which calls the user wants to approve first (only for a run that no ``pi-kernel-offer``
command came before: the kernel sends its own prompts' offer ahead of them on Pi's stdin);
``{"secret", "op": "approve", "tool", "callId", "args"}`` asks the user about one call (Pi's
``tool_call`` hook, before any tool runs, Pi's own too); ``{"secret", "op": "budget",
"usage"}`` asks whether the run may go on, having spent ``usage`` so far (before each tool
and each model call, when a budget is set); ``{"secret", "op": "call", "tool", "callId",
"args"}`` runs one.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import secrets
import shutil
import socket
import struct
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, Self

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import variables
from ..records.redaction import redact
from ..rpc.environment import hidden_values
from ..rpc.protocol import Usage
from ..rpc.transport import task_group
from ..rpc.usage import UsageTally
from .catalog import EXTENSION, KernelToolCall, ToolReply, Verdict
from .folders import make_folder

logger = logging.getLogger(__name__)

REQUEST_LIMIT = 4_000_000
"""Bytes of one request line: code Pi wants run, with room to spare."""
REQUEST_TIMEOUT = 10.0
"""Seconds a connection has to deliver its request line (Pi's extension sends it at once)."""
REPLY_TIMEOUT = 30.0
"""Seconds a reply may take to be taken: a caller that reads nothing is let go."""
MAX_WAITING = 32
"""Connections still owing their request; past this the oldest is closed, so a flood of idle
connections (from any process of the user, Pi's own bash included) holds only this many of
the kernel's file descriptors.  One from a process that already proved the secret (Pi) is
never the one closed."""
ACCEPT_BACKOFF = 0.1
"""Seconds to wait when the kernel has no file descriptor left to accept with."""


class ChannelStats(NamedTuple):
    """What a channel served: runs that asked which tools to offer (0: Pi's extension never
    spoke), calls, calls checked for approval (the tools in ``asked``), and refused
    requests."""

    offers: int
    calls: int
    approvals: int
    refused: int


class ToolHandler(Protocol):
    """What the notebook face lends the session: the tools, as the running cell allows them."""

    def offered(self) -> Sequence[str]:
        """The tools to offer Pi for the run about to start."""
        ...

    def asked(self) -> Sequence[str]:
        """The tools (any of Pi's, or ``EVERY_TOOL``) whose calls wait for the user's
        approval in the run about to start."""
        ...

    async def approve(self, call: KernelToolCall) -> Verdict:
        """Whether the user lets ``call`` run (asked in the running cell when needed)."""
        ...

    def budgeted(self) -> bool:
        """Whether the run about to start has a budget to keep to."""
        ...

    def budget_stop(self, run_usage: UsageTally) -> str | None:
        """Why the run must stop, having spent ``run_usage`` so far; None: go on."""
        ...

    async def call(self, call: KernelToolCall) -> ToolReply:
        """Run one call (on the kernel's main thread) and say what happened."""
        ...


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    secret: str
    op: Literal["offer", "approve", "budget", "call"]
    tool: str = ""
    call_id: str = Field("", alias="callId")
    args: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Usage()
    """What the run spent so far (``budget``), summed by the extension as Pi's usage."""


def refusal(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason}


class ToolChannel:
    """The socket for one Pi process.  ``async with ToolChannel(tools) as channel``; give Pi
    ``channel.args`` and ``channel.env``."""

    def __init__(self, tools: ToolHandler) -> None:
        self.tools = tools
        self._secret = secrets.token_urlsafe(32)
        self._folder: Path | None = None
        self.offers = 0
        """How many runs asked which tools to offer (0: the extension never spoke)."""
        self.calls = 0
        self.approvals = 0
        """Calls Pi's extension checked for approval (the tools in ``asked``)."""
        self.refused = 0
        """Requests refused: a wrong secret, another user, or a malformed request."""
        self._stack = AsyncExitStack()
        self._waiting: dict[anyio.CancelScope, None] = {}
        """Connections still owing their request, oldest first (an ordered set)."""
        self._proven: set[int] = set()
        """Processes that sent the secret: Pi's."""

    def offer(self) -> dict[str, Any]:
        """What the run about to start may use, counted as one run offered: its tools, the
        tools whose calls the user approves first, and whether it keeps to a budget."""
        self.offers += 1
        tools, asked = list(self.tools.offered()), list(self.tools.asked())
        return {"tools": tools, "ask": asked, "budget": self.tools.budgeted()}

    def stats(self) -> ChannelStats:
        return ChannelStats(self.offers, self.calls, self.approvals, self.refused)

    @property
    def path(self) -> Path:
        assert self._folder is not None, "use ToolChannel as an async context manager"
        return self._folder / "kernel.sock"

    @property
    def secret_file(self) -> Path:
        """Where the secret waits for Pi's extension, which removes it when it loads."""
        return self.path.parent / "secret"

    @property
    def args(self) -> tuple[str, ...]:
        return ("-e", str(EXTENSION))

    @property
    def env(self) -> dict[str, str]:
        return {
            variables.TOOLS_SOCKET: str(self.path),
            variables.TOOLS_SECRET_FILE: str(self.secret_file),
        }

    async def __aenter__(self) -> Self:
        self._folder, lock = make_folder()
        self._stack.callback(shutil.rmtree, self._folder, True)
        self._stack.callback(lock.close)
        try:
            descriptor = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(self._secret)
            listener = await anyio.create_unix_listener(self.path, mode=0o600)
            await self._stack.enter_async_context(listener)
            tasks = await self._stack.enter_async_context(task_group())
        except BaseException:
            # No __aexit__ follows a failed __aenter__: the folder and its lock go now.
            await self._stack.aclose()
            raise
        self._stack.callback(tasks.cancel_scope.cancel)  # runs first: the listener stops
        tasks.start_soon(self._accept, listener, tasks)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _accept(self, listener: SocketListener, tasks: TaskGroup) -> None:
        """Accept for as long as the channel lives: no caller, however many, ends it."""
        failing = False  # logged once per stretch of failures, not ten times a second
        while True:
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:
                # Out of file descriptors (anyio says EMFILE as BrokenResourceError): the next
                # accept may succeed, once connections waiting for their request are let go.
                if not failing:
                    reason = exc.__cause__ or exc
                    logger.warning("the kernel tools' socket cannot accept now: %s", reason)
                failing = True
                await anyio.sleep(ACCEPT_BACKOFF)
                continue
            if failing:
                logger.warning("the kernel tools' socket accepts again")
            failing = False
            tasks.start_soon(self._serve_one, stream)

    async def _serve_one(self, stream: SocketStream) -> None:
        async with stream:
            reply = await self._answer(stream)
            if reply is None:
                return
            # A caller that gave up (Pi aborted the turn) is not there to hear the answer.
            with (
                suppress(anyio.BrokenResourceError, anyio.ClosedResourceError),
                anyio.move_on_after(REPLY_TIMEOUT),
            ):
                await stream.send(json.dumps(reply).encode() + b"\n")

    async def _answer(self, stream: SocketStream) -> dict[str, Any] | None:
        """The reply to the request on ``stream``; None when the connection was closed
        before it asked (too slow, or the oldest of too many waiting)."""
        pid, uid = _peer(stream)
        if uid != os.getuid():
            self.refused += 1
            return refusal("this channel serves only the user who runs the kernel")
        line = await self._request_line(stream, pid)
        if line is None:
            self.refused += 1
            return None
        try:
            request = _Request.model_validate_json(line)
        except ValidationError:
            self.refused += 1
            return refusal("not a kernel tools request")
        if not hmac.compare_digest(request.secret.encode(), self._secret.encode()):
            self.refused += 1
            return refusal("wrong secret: this channel serves only its own kernel's Pi")
        if pid:
            self._proven.add(pid)
        if request.op == "offer":
            return {"ok": True, **self.offer()}
        if request.op == "budget":
            run_usage = UsageTally()
            run_usage.add(request.usage)
            return {"ok": True, "stop": self.tools.budget_stop(run_usage)}
        call = KernelToolCall(request.tool, request.call_id, request.args)
        if request.op == "approve":
            self.approvals += 1
            try:
                return (await self.tools.approve(call)).wire()
            except Exception as exc:  # Pi's extension then blocks the call: never a silent yes
                logger.exception("asking about %s failed", request.tool)
                return refusal(f"the kernel could not ask about {request.tool}: {exc}")
        self.calls += 1
        try:
            reply = await self.tools.call(call)
        except Exception as exc:
            # The kernel's own failure, not the code's (that is a reply): Pi hears it, and
            # the log keeps the traceback.
            logger.exception("kernel tool %s failed", request.tool)
            return refusal(f"the kernel could not run {request.tool}: {exc}")
        return _without_hidden(reply).wire()

    async def _request_line(self, stream: SocketStream, pid: int) -> bytes | None:
        """The request line, read within ``REQUEST_TIMEOUT``; None when it did not come (too
        slow, or closed to make room for a newer connection)."""
        with anyio.CancelScope() as waiting:
            if pid not in self._proven:
                self._waiting[waiting] = None
                if len(self._waiting) > MAX_WAITING:
                    oldest = next(iter(self._waiting))
                    del self._waiting[oldest]
                    oldest.cancel()
            try:
                with anyio.fail_after(REQUEST_TIMEOUT):
                    receiver = BufferedByteReceiveStream(stream)
                    return await receiver.receive_until(b"\n", REQUEST_LIMIT)
            except (anyio.IncompleteRead, anyio.DelimiterNotFound):
                return b""  # cut short, or too long: not a request (the caller hears so)
            except (TimeoutError, OSError, anyio.BrokenResourceError):
                return None
            finally:
                self._waiting.pop(waiting, None)
        return None  # closed to make room


def _without_hidden(reply: ToolReply) -> ToolReply:
    """Pi's code runs in the kernel, whose environment holds what Pi's own does not (the
    hub's token): those values do not go back to Pi."""
    text = redact(reply.text, hidden_values(os.environ))
    return reply if text == reply.text else dataclasses.replace(reply, text=text)


def _peer(stream: SocketStream) -> tuple[int, int]:
    """The peer's pid (0: unknown) and uid (this user's where the system does not say: the
    socket's 0700 folder already keeps other users out)."""
    peer_credentials = getattr(socket, "SO_PEERCRED", None)
    if peer_credentials is None:
        return 0, os.getuid()
    raw = stream.extra(SocketAttribute.raw_socket)
    size = struct.calcsize("3i")
    pid, uid, _gid = struct.unpack("3i", raw.getsockopt(socket.SOL_SOCKET, peer_credentials, size))
    return int(pid), int(uid)
