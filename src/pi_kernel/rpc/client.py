"""The async Pi RPC client: request ids, a pending table, and the event fan-out.

One dispatcher task reads every record Pi writes, in order, and routes it:

* a response with an id goes to whoever waits for that id (a pending request, or the run
  that sent the command); a late response whose waiter gave up is dropped;
* an id-less response (Pi's answer to an unparseable line) fails the oldest waiter for the
  same command, if any;
* events and extension UI requests go to every subscriber; dialogs that need an answer are
  handed to the UI handler (by default: cancelled, with a notice), so Pi never hangs;
* when stdout closes, every waiter and subscriber fails at once with ``PiExited``.

A prompt's run (``Run``, in ``run``) uses the client only through ``RunClient``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup

from .errors import PiCommandError, PiError, PiExited, PiProtocolError, PiTimeout
from .feed import ClientEvent, ClientNotice, Feed
from .launch import PiInstall, startup_failure
from .protocol import (
    COMMANDS_ADAPTER,
    MODELS_ADAPTER,
    EntryAppended,
    ExtensionUIRequest,
    ModelInfo,
    Response,
    SessionEntries,
    SessionState,
    SessionStats,
    SessionSwitch,
    SlashCommand,
    command,
    extension_ui_response,
    thinking_levels_for,
)
from .run import Run
from .transport import Connection, open_transport, receive_without_checkpoint, task_group
from .usage import UsageTally

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
"""Seconds for an ordinary command; Pi answers state queries in milliseconds."""
ABORT_TIMEOUT = 5.0
"""Seconds for ``abort`` to answer; Pi answers once the run has wound down."""
STARTUP_TIMEOUT = 30.0
"""Seconds for Pi's first answer: Node loads Pi's modules for 1-2 s, longer on a busy machine."""
EXIT_REAP_TIMEOUT = 2.0
"""Seconds to wait for Pi's exit code after its stdout closed, for the error message."""
PROTOCOL_ERRORS_KEPT = 20
"""Unreadable lines kept for diagnosis; the reader goes on after each."""

SETTLED_SINCE = (0, 80, 4)
"""First Pi version that emits ``agent_settled``."""
THINKING_LEVELS_SINCE = (0, 81, 0)
"""First Pi version with the ``get_available_thinking_levels`` command."""
ENTRIES_SINCE = (0, 80, 3)
"""First Pi version with the ``get_entries`` command (the session tree, read over RPC)."""
ABORTS_STARTING_RUN_SINCE = (1, 2, 0)
"""First Pi version where an abort that arrives while a run starts (its preflight:
compaction, ``before_agent_start``) stops the run; earlier ones ignore it."""

_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
"""An ANSI control sequence (colours) in Pi's stderr."""


UIHandler = Callable[[ExtensionUIRequest], Awaitable[Mapping[str, Any]]]
"""Answers a dialog request with an ``extension_ui_response`` record, or raises
``DialogDeclined`` to cancel it and say why."""


class DialogDeclined(Exception):
    """A UI handler cannot put the dialog to anyone; the message says why."""


async def cancel_dialog(request: ExtensionUIRequest) -> Mapping[str, Any]:
    """The default UI handler: nobody can answer here, so every dialog is cancelled."""
    raise DialogDeclined("nobody can answer it here")


@dataclass
class _Pending:
    command: str
    done: anyio.Event = field(default_factory=anyio.Event)
    response: Response | None = None
    error: PiError | None = None

    def resolve(self, response: Response) -> None:
        self.response = response
        self.done.set()

    def fail(self, error: PiError) -> None:
        self.error = error
        self.done.set()


class Subscription:
    """Every event Pi emits from now until the subscription is closed."""

    def __init__(self, client: PiClient, subscriber: Feed) -> None:
        self._client = client
        self._subscriber = subscriber

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ClientEvent:
        while True:
            try:
                item = await self._subscriber.receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise StopAsyncIteration from None
            if not isinstance(item, Response):
                return item

    def close(self) -> None:
        self._client.unsubscribe(self._subscriber)


class PiClient:
    """A connected Pi.  Create it with ``open_client``; it is closed when that block ends."""

    def __init__(
        self,
        connection: Connection,
        install: PiInstall,
        tasks: TaskGroup,
        ui_handler: UIHandler,
    ) -> None:
        self.install = install
        self.ui_handler = ui_handler
        self.protocol_errors: deque[PiProtocolError] = deque(maxlen=PROTOCOL_ERRORS_KEPT)
        self.exit_error: PiExited | None = None
        self._connection = connection
        self._tasks = tasks
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._subscribers: list[Feed] = []
        self.commands_sent: Counter[str] = Counter()
        """How many commands of each type went to Pi (shows what discovery really costs)."""
        self.side_usage: dict[str, UsageTally] = {}
        """Usage outside assistant messages since this Pi started, by kind (``cache_warm``)."""
        self._gone = anyio.Event()
        """Set once the dispatcher has seen Pi's stdout end and ``exit_error`` says how."""
        self.command_timeout = COMMAND_TIMEOUT
        """Seconds any command may take unless it says otherwise (a run's idle check too)."""
        self.abort_timeout = ABORT_TIMEOUT
        """Seconds ``abort`` may take (a run's courtesy abort on the way out too)."""

    # -- connection facts ------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._connection.pid

    @property
    def alive(self) -> bool:
        return self.exit_error is None

    @property
    def settles_with_event(self) -> bool:
        """Whether this Pi ends runs with ``agent_settled`` (else the client infers it)."""
        return self.install.at_least(*SETTLED_SINCE)

    @property
    def aborts_starting_run(self) -> bool:
        """Whether an abort sent before Pi answered the prompt stops its run."""
        return self.install.at_least(*ABORTS_STARTING_RUN_SINCE)

    def take_diagnostics(self) -> list[str]:
        """Pi's stderr lines since the last call: its diagnostics (Pi >= 1 writes a model it
        could not restore, an extension that failed to load, there and nowhere else)."""
        unread = self._connection.stderr.unread
        # Pi colours its warnings for a terminal; a notebook shows the words.
        taken = [_TERMINAL_ESCAPE.sub("", line) for line in unread]
        unread.clear()
        return taken

    # -- the seam a Run uses (RunClient) ---------------------------------------------------

    def next_id(self) -> str:
        """A fresh request id (the seam a ``Run`` uses, as the rest below)."""
        return f"pk-{next(self._ids)}"

    async def send_record(self, record: Mapping[str, Any]) -> None:
        """Write one record to Pi; ``PiExited`` (with Pi's last words) when Pi is gone."""
        if self.exit_error is not None:
            raise self.exit_error
        try:
            await self._connection.send(record)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            # Pi is gone before the dispatcher has read its stdout to the end (a Pi that
            # exits at once): wait for that, briefly, for its exit code and last words.
            with anyio.move_on_after(EXIT_REAP_TIMEOUT + 1):
                await self._gone.wait()
            raise self.exit_error or PiExited("Pi's stdin is closed: Pi has exited") from None
        self.commands_sent[str(record.get("type"))] += 1

    def subscribe(self) -> Feed:
        """A feed of every event from now on (closed at once when Pi has exited)."""
        subscriber = Feed()
        if self.exit_error is not None:
            subscriber.send.close()
        else:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Feed) -> None:
        """Stop and close a feed from ``subscribe``."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
        subscriber.send.close()
        subscriber.receive.close()

    def _broadcast(self, item: ClientEvent) -> None:
        for subscriber in self._subscribers:
            subscriber.send.send_nowait(item)

    async def _dispatch(self) -> None:
        records = self._connection.records
        stdout_ended = False
        try:
            while True:
                try:
                    item = await receive_without_checkpoint(records)
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    stdout_ended = True
                    break
                if isinstance(item, PiProtocolError):
                    self.protocol_errors.append(item)
                    self._broadcast(ClientNotice(level="warning", message=str(item)))
                elif isinstance(item, Response):
                    self._route_response(item)
                elif isinstance(item, ExtensionUIRequest):
                    self._broadcast(item)
                    if item.needs_answer:
                        self._tasks.start_soon(self._answer_dialog, item)
                else:
                    if isinstance(item, EntryAppended):
                        self._count_side_usage(item)
                    self._broadcast(item)
        finally:
            with anyio.CancelScope(shield=True):
                await self._closed(reap=stdout_ended)

    def _count_side_usage(self, event: EntryAppended) -> None:
        # Counted here, where every event passes, because cache warming happens between
        # runs, when nobody is subscribed.
        entry = event.usage_entry
        if entry is not None:
            self.side_usage.setdefault(entry.kind or "usage", UsageTally()).add(entry.usage)
        summary = event.summary_usage
        if summary is not None:  # a compaction's or a branch summary's model call
            self.side_usage.setdefault(summary[0], UsageTally()).add(summary[1])

    def _route_response(self, response: Response) -> None:
        if response.id is not None:
            for subscriber in self._subscribers:
                if response.id in subscriber.watched:
                    subscriber.watched.discard(response.id)
                    subscriber.send.send_nowait(response)
                    return
            pending = self._pending.get(response.id)
            if pending is not None:
                pending.resolve(response)
            return  # a late answer to a request that timed out: nobody wants it now
        for pending in self._pending.values():
            if pending.command == response.command and pending.response is None:
                pending.resolve(response)
                return
        self._broadcast(
            ClientNotice(
                level="warning",
                message=f"Pi reported an error for no request: {response.error or response}",
            )
        )

    async def _answer_dialog(self, request: ExtensionUIRequest) -> None:
        # Pi waits for every dialog it opens: whatever happens here, it gets an answer.
        asked = f"Pi's extension asked {request.title or request.message or request.method!r}"
        asked += f" ({request.method})"
        try:
            answer = await self.ui_handler(request)
        except DialogDeclined as exc:
            answer = extension_ui_response(request.id, cancelled=True)
            self._broadcast(
                ClientNotice(level="warning", message=f"{asked}; it was cancelled: {exc}.")
            )
        except Exception as exc:
            answer = extension_ui_response(request.id, cancelled=True)
            self._broadcast(
                ClientNotice(
                    level="warning",
                    message=f"{asked}; answering failed, so it was cancelled "
                    f"({type(exc).__name__}: {exc}).",
                )
            )
        else:
            if answer.get("cancelled"):
                self._broadcast(ClientNotice(level="info", message=f"{asked}; it was cancelled."))
        with suppress(PiError):  # Pi is gone; its exit already reached every waiter
            await self.send_record(answer)

    async def _closed(self, *, reap: bool) -> None:
        # Only a Pi whose stdout ended is exiting: waiting for the exit code of one that is
        # still running (the client is being closed) would just delay its shutdown.
        returncode = await self._connection.wait(EXIT_REAP_TIMEOUT) if reap else None
        tail = self._connection.stderr.lines(20)
        code = f" with code {returncode}" if returncode is not None else ""
        self.exit_error = PiExited(
            f"Pi exited{code}",
            returncode=returncode,
            stderr_tail=tail,
            hint="The next command starts a new Pi; its last stderr lines are kept.",
        )
        for pending in self._pending.values():
            pending.fail(self.exit_error)
        for subscriber in self._subscribers:
            subscriber.send.close()
        self._subscribers.clear()
        self._gone.set()

    # -- requests --------------------------------------------------------------------------

    async def request(self, type_: str, *, timeout: float | None = None, **fields: Any) -> Any:
        """Send one command and return its ``data``; Pi's ``success: false`` raises.
        ``timeout``: seconds for the answer (``command_timeout`` when left out)."""
        timeout = self.command_timeout if timeout is None else timeout
        request_id = self.next_id()
        pending = _Pending(type_)
        self._pending[request_id] = pending
        sent = anyio.current_time()
        try:
            await self.send_record({**command(type_, **fields), "id": request_id})
            with anyio.fail_after(timeout):
                await pending.done.wait()
        except TimeoutError:
            logger.info("%s %s: no answer within %g s", type_, request_id, timeout)
            raise PiTimeout(type_, timeout) from None
        finally:
            self._pending.pop(request_id, None)
        logger.debug(  # the command's name and id only: its fields may hold the user's words
            "%s %s: %s in %.0f ms",
            type_,
            request_id,
            "answered" if pending.error is None and pending.response else "failed",
            (anyio.current_time() - sent) * 1000,
        )
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        if not pending.response.success:
            raise PiCommandError(type_, pending.response.error or "failed")
        return pending.response.data

    def prompt(self, message: str, *, images: Sequence[Mapping[str, Any]] | None = None) -> Run:
        """Start a run (use ``async with``); Pi must be idle — use ``steer`` during a run."""
        return Run(self, message, images)

    @asynccontextmanager
    async def events(self) -> AsyncIterator[Subscription]:
        """Every event from now on, as an async iterator, until the block ends."""
        subscriber = self.subscribe()
        try:
            yield Subscription(self, subscriber)
        finally:
            self.unsubscribe(subscriber)

    async def steer(self, message: str) -> None:
        """Queue a message for the running agent, delivered before its next LLM call."""
        await self.request("steer", message=message)

    async def follow_up(self, message: str) -> None:
        """Queue a message for when the running agent has finished."""
        await self.request("follow_up", message=message)

    async def abort(self) -> None:
        """Stop the current run; returns once Pi is idle."""
        await self.request("abort", timeout=self.abort_timeout)

    async def get_state(self) -> SessionState:
        return SessionState.model_validate(await self.request("get_state"))

    async def get_available_models(self) -> list[ModelInfo]:
        data = await self.request("get_available_models")
        return MODELS_ADAPTER.validate_python(data.get("models", []))

    async def set_model(self, provider: str, model_id: str) -> ModelInfo:
        data = await self.request("set_model", provider=provider, modelId=model_id)
        return ModelInfo.model_validate(data)

    async def get_available_thinking_levels(self) -> list[str]:
        """Levels the current model supports; computed from the model on Pi < 0.81."""
        if self.install.at_least(*THINKING_LEVELS_SINCE):
            data = await self.request("get_available_thinking_levels")
            return [str(level) for level in data.get("levels", [])]
        state = await self.get_state()
        return thinking_levels_for(state.model) if state.model else ["off"]

    async def set_thinking_level(self, level: str) -> None:
        """Pi clamps silently to what the model supports: read ``get_state`` for the result."""
        await self.request("set_thinking_level", level=level)

    async def new_session(self, parent_session: str | None = None) -> SessionSwitch:
        data = await self.request("new_session", parentSession=parent_session)
        return SessionSwitch.model_validate(data or {})

    async def switch_session(self, session_path: str) -> SessionSwitch:
        """Note: Pi creates ``session_path`` if it does not exist; check first."""
        data = await self.request("switch_session", sessionPath=session_path)
        return SessionSwitch.model_validate(data or {})

    async def get_session_stats(self) -> SessionStats:
        return SessionStats.model_validate(await self.request("get_session_stats"))

    async def export_html(self, output_path: str | None = None) -> str:
        data = await self.request("export_html", outputPath=output_path)
        return str(data["path"])

    @property
    def reads_entries(self) -> bool:
        """Whether this Pi answers ``get_entries`` (the session tree)."""
        return self.install.at_least(*ENTRIES_SINCE)

    async def get_entries(self, since: str | None = None) -> SessionEntries:
        """The session's entries in append order (those after entry ``since``), and its
        leaf: where the next prompt attaches."""
        data = await (
            self.request("get_entries", since=since) if since else self.request("get_entries")
        )
        return SessionEntries.model_validate(data or {})

    async def get_commands(self) -> list[SlashCommand]:
        data = await self.request("get_commands")
        return COMMANDS_ADAPTER.validate_python(data.get("commands", []))


@asynccontextmanager
async def open_client(
    install: PiInstall,
    *,
    args: Sequence[str] = (),
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    ui_handler: UIHandler = cancel_dialog,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> AsyncIterator[PiClient]:
    """Start ``pi --mode rpc *args`` and yield a client once Pi has answered its first command.

    A Pi that cannot start, exits during start-up or stays silent raises one clear error
    naming the path that was tried, and leaves no process behind.
    """
    argv = [*install.argv, "--mode", "rpc", *args]
    async with (
        open_transport(argv, cwd=cwd, env=env, name=str(install.path)) as transport,
        connect(transport, install, ui_handler=ui_handler) as client,
    ):
        await _handshake(client, startup_timeout)
        yield client


@asynccontextmanager
async def connect(
    connection: Connection, install: PiInstall, *, ui_handler: UIHandler = cancel_dialog
) -> AsyncIterator[PiClient]:
    """A client over ``connection`` (a process's transport, or in tests recorded records)
    until the block ends; ``open_client`` also waits for Pi's first answer."""
    async with task_group() as tasks:
        client = PiClient(connection, install, tasks, ui_handler)
        tasks.start_soon(client._dispatch)
        try:
            yield client
        finally:
            tasks.cancel_scope.cancel()


async def _handshake(client: PiClient, timeout: float) -> None:
    where = str(client.install.path)
    try:
        await client.request("get_state", timeout=timeout)
    except PiExited as exc:
        raise startup_failure(client.install, exc) from None
    except PiTimeout:
        raise PiTimeout(
            f"its first command during start-up ({where})",
            timeout,
            hint="Pi may be stuck on a prompt or a slow file system; see its stderr.",
        ) from None
