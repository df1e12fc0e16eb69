"""The async Pi RPC client: request ids, a pending table, the event fan-out, and runs.

One dispatcher task reads every record Pi writes, in order, and routes it:

* a response with an id goes to whoever waits for that id (a pending request, or the run
  that sent the command); a late response whose waiter gave up is dropped;
* an id-less response (Pi's answer to an unparseable line) fails the oldest waiter for the
  same command, if any;
* events and extension UI requests go to every subscriber; dialogs that need an answer are
  handed to the UI handler (by default: cancelled, with a notice), so Pi never hangs;
* when stdout closes, every waiter and subscriber fails at once with ``PiExited``.

A ``Run`` is one prompt from the ``prompt`` command to the moment Pi will do nothing more on
its own: ``agent_settled`` on Pi >= 0.80.4; on older Pi, an ``agent_end`` with no retry
announced followed by an idle ``get_state``.  ``agent_end`` alone is never the end (retries,
compaction and queued follow-ups start new agent runs after it).  Pi >= 1 says in the
prompt's response whether a run started at all (``disposition``), and in ``agent_settled``
whether it was aborted; older Pis are asked (``get_state``) and judged by the last message.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup

from .errors import PiCommandError, PiError, PiExited, PiProtocolError, PiTimeout
from .launch import PiInstall
from .protocol import (
    COMMANDS_ADAPTER,
    MODELS_ADAPTER,
    AgentEnd,
    AgentMessage,
    AgentSettled,
    AgentStart,
    AssistantMessage,
    AutoRetryEnd,
    AutoRetryStart,
    CompactionEnd,
    EntryAppended,
    Event,
    ExtensionUIRequest,
    MessageEnd,
    ModelInfo,
    Response,
    SessionState,
    SessionStats,
    SessionSwitch,
    SlashCommand,
    Usage,
    WireModel,
    command,
    extension_ui_response,
    thinking_levels_for,
)
from .transport import PiTransport, open_transport, take_soon, task_group

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 10.0
"""Seconds for an ordinary command; Pi answers state queries in milliseconds."""
STARTUP_TIMEOUT = 30.0
"""Seconds for Pi's first answer: Node loads Pi's modules for 1-2 s, longer on a busy machine."""
ABORT_TIMEOUT = 5.0
"""Seconds for ``abort`` to answer; Pi answers once the run has wound down."""
EXIT_REAP_TIMEOUT = 2.0
"""Seconds to wait for Pi's exit code after its stdout closed, for the error message."""
PROTOCOL_ERRORS_KEPT = 20
"""Unreadable lines kept for diagnosis; the reader goes on after each."""

SETTLED_SINCE = (0, 80, 4)
"""First Pi version that emits ``agent_settled``."""
THINKING_LEVELS_SINCE = (0, 81, 0)
"""First Pi version with the ``get_available_thinking_levels`` command."""

_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
"""An ANSI control sequence (colours) in Pi's stderr."""


class ClientNotice(WireModel):
    """Something the client did on the user's behalf that the user should see."""

    type: Literal["client_notice"] = "client_notice"
    level: Literal["info", "warning", "error"] = "info"
    message: str


ClientEvent = Event | ExtensionUIRequest | ClientNotice
"""What subscribers receive: Pi's events, its extension UI requests, and client notices."""

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


_Item = ClientEvent | Response


class _Subscriber:
    """An unbounded, ordered feed of events, plus the responses to ids it watches."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[_Item](math.inf)
        self.watched: set[str] = set()


class Subscription:
    """Every event Pi emits from now until the subscription is closed."""

    def __init__(self, client: PiClient, subscriber: _Subscriber) -> None:
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
        self._client._unsubscribe(self._subscriber)


@dataclass
class UsageTally:
    """Usage Pi reported outside assistant messages, summed (``entry_appended`` usage
    entries, Pi >= 1): idle prompt-cache warming is a cost the user pays between cells."""

    count: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0

    def add(self, usage: Usage) -> None:
        self.count += 1
        self.input += usage.input
        self.output += usage.output
        self.cache_read += usage.cache_read
        self.cache_write += usage.cache_write
        self.cost += usage.cost.total

    def since(self, earlier: UsageTally) -> UsageTally:
        """What was added after ``earlier`` (a copy taken from this tally)."""
        return UsageTally(
            self.count - earlier.count,
            self.input - earlier.input,
            self.output - earlier.output,
            self.cache_read - earlier.cache_read,
            self.cache_write - earlier.cache_write,
            self.cost - earlier.cost,
        )


RunStatus = Literal["completed", "failed", "aborted"]


@dataclass
class RunOutcome:
    """How a run ended.  A model error is a *failed* run, not a client error."""

    status: RunStatus
    error: str | None = None
    messages: list[AgentMessage] = field(default_factory=list)
    """Every message the run's agent loops produced (``agent_end.messages``), in order."""
    handled_without_run: bool = False
    """Pi accepted the prompt and started no agent run (an extension command, for one)."""

    @property
    def final_text(self) -> str:
        """The last assistant message's visible text."""
        for message in reversed(self.messages):
            if isinstance(message, AssistantMessage):
                return message.text
        return ""


class Run:
    """One prompt, from the ``prompt`` command until Pi settles; iterate it for its events.

    Use as ``async with client.prompt("...") as run: async for event in run: ...``.  Leaving
    the block before the run settled (an exception, a cancellation) sends Pi a courtesy
    ``abort`` under a short shielded deadline, so the next run starts clean.
    """

    def __init__(
        self, client: PiClient, message: str, images: Sequence[Mapping[str, Any]] | None
    ) -> None:
        self._client = client
        self._message = message
        self._images = images
        self._subscriber: _Subscriber | None = None
        self._prompt_id = ""
        self._check_id: str | None = None
        self._check_deadline = math.inf
        self._accepted = False
        self._saw_agent_start = False
        self._agent_running = False
        self._retry_pending = False
        self._final_error: str | None = None
        self._last_assistant: AssistantMessage | None = None
        self._messages: list[AgentMessage] = []
        self.outcome: RunOutcome | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    async def __aenter__(self) -> Self:
        self._subscriber = self._client._subscribe()
        self._prompt_id = self._client._next_id()
        self._subscriber.watched.add(self._prompt_id)
        record = command("prompt", message=self._message, images=self._images)
        try:
            await self._client._send({**record, "id": self._prompt_id})
        except BaseException:
            self._client._unsubscribe(self._subscriber)
            raise
        logger.debug("run %s: prompt sent (%d characters)", self._prompt_id, len(self._message))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.done and self._client.alive:
                with anyio.CancelScope(shield=True), anyio.move_on_after(ABORT_TIMEOUT):
                    await self._abort_and_drain()
        finally:
            if self._subscriber is not None:
                self._client._unsubscribe(self._subscriber)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ClientEvent:
        while not self.done:
            item = await self._receive()
            if isinstance(item, Response):
                await self._on_response(item)
                continue
            await self._on_event(item)
            return item
        raise StopAsyncIteration

    async def wait(self) -> RunOutcome:
        """Consume the run to the end and return how it ended."""
        async for _ in self:
            pass
        assert self.outcome is not None
        return self.outcome

    async def _receive(self) -> _Item:
        assert self._subscriber is not None, "use the run as an async context manager"
        try:
            if self._check_id is None:
                return await take_soon(self._subscriber.receive)
            # Only the idle check has a deadline; a cancel scope per event would cost more
            # than the event itself.
            with anyio.fail_after(max(0.0, self._check_deadline - anyio.current_time())):
                return await self._subscriber.receive.receive()
        except TimeoutError:
            raise PiTimeout("the idle check after the run (get_state)", COMMAND_TIMEOUT) from None
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._client.exit_error or PiExited("Pi stopped during the run") from None

    async def _on_response(self, response: Response) -> None:
        if response.id == self._prompt_id:
            if not response.success:
                # Rejected before the run began (no model, no API key, busy), or, on old Pi,
                # a failure reported after acceptance: either way this run is over.
                self._finish("failed", response.error or "prompt rejected")
                raise PiCommandError("prompt", response.error or "rejected")
            self._accepted = True
            disposition = (
                response.data.get("disposition") if isinstance(response.data, dict) else None
            )
            if disposition == "handled":
                # An extension command or input handler consumed it: no run, no events.
                self._finish("completed", handled_without_run=True)
            elif disposition is None:
                # Pi < 1 does not say: only its state tells whether anything runs.
                await self._check_idle()
            # "started" or "queued": agent_settled ends it.
        elif response.id == self._check_id:
            self._check_id = None
            if not response.success:
                raise PiCommandError("get_state", response.error or "failed")
            state = SessionState.model_validate(response.data)
            self._on_idle_check(state)

    def _on_idle_check(self, state: SessionState) -> None:
        busy = state.is_streaming or state.is_compacting
        if not self._saw_agent_start and not busy:
            # Accepted, yet nothing ran and nothing runs: an extension command, or input
            # an extension consumed.  Pi emits no events at all for these.
            self._finish("completed", handled_without_run=True)
        elif (
            not self._client.settles_with_event
            and not self._agent_running
            and not busy
            and not self._retry_pending
            and state.pending_message_count == 0
        ):
            self._finish_from_messages()

    async def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, AgentStart):
            self._saw_agent_start = True
            self._agent_running = True
            self._retry_pending = False
        elif isinstance(event, AgentEnd):
            self._agent_running = False
            self._messages.extend(event.messages)
            if event.will_retry:
                self._retry_pending = True
            if not self._client.settles_with_event and not self._retry_pending:
                await self._check_idle()
        elif isinstance(event, AgentSettled):
            if self._saw_agent_start or self._accepted:
                self._finish_from_messages(aborted=event.aborted)
        elif isinstance(event, AutoRetryStart):
            self._retry_pending = True
        elif isinstance(event, AutoRetryEnd):
            if not event.success:
                self._retry_pending = False
                self._final_error = event.final_error
        elif isinstance(event, CompactionEnd):
            if event.will_retry:
                self._retry_pending = True
        elif isinstance(event, MessageEnd) and isinstance(event.message, AssistantMessage):
            self._last_assistant = event.message

    async def _check_idle(self) -> None:
        if self._check_id is not None or self.done:
            return
        assert self._subscriber is not None
        self._check_id = self._client._next_id()
        self._subscriber.watched.add(self._check_id)
        self._check_deadline = anyio.current_time() + COMMAND_TIMEOUT
        await self._client._send({"type": "get_state", "id": self._check_id})

    def _finish_from_messages(self, *, aborted: bool | None = None) -> None:
        """How the run ended, from its last assistant message; ``aborted`` is Pi's own word
        (``agent_settled.aborted``, Pi >= 1), which the message cannot overrule."""
        last = self._last_assistant
        if aborted is None:
            aborted = last is not None and last.stop_reason == "aborted"
        if aborted:
            self._finish("aborted", last.error_message if last is not None else None)
        elif last is not None and last.stop_reason == "error":
            self._finish("failed", self._final_error or last.error_message or "model error")
        elif self._final_error is not None:
            self._finish("failed", self._final_error)
        else:
            self._finish("completed")

    def _finish(
        self, status: RunStatus, error: str | None = None, *, handled_without_run: bool = False
    ) -> None:
        if self.outcome is None:
            self.outcome = RunOutcome(status, error, self._messages, handled_without_run)
            logger.debug("run %s settled: %s", self._prompt_id, status)

    async def _abort_and_drain(self) -> None:
        """Ask Pi to stop, then read this run's remaining records up to abort's answer.

        Pi answers ``abort`` only once the run has wound down, so every event of this run
        precedes the answer in stdout and none can leak into the next run.
        """
        assert self._subscriber is not None
        abort_id = self._client._next_id()
        self._subscriber.watched.add(abort_id)
        await self._client._send({"type": "abort", "id": abort_id})
        while True:
            item = await self._subscriber.receive.receive()
            if isinstance(item, Response) and item.id == abort_id:
                break
            if not isinstance(item, Response):
                await self._on_event(item)
        self._finish_from_messages()
        if self.outcome is not None and self.outcome.status == "completed":
            self.outcome.status = "aborted"


class PiClient:
    """A connected Pi.  Create it with ``open_client``; it is closed when that block ends."""

    def __init__(
        self,
        transport: PiTransport,
        install: PiInstall,
        tasks: TaskGroup,
        ui_handler: UIHandler,
    ) -> None:
        self.install = install
        self.ui_handler = ui_handler
        self.protocol_errors: deque[PiProtocolError] = deque(maxlen=PROTOCOL_ERRORS_KEPT)
        self.exit_error: PiExited | None = None
        self._transport = transport
        self._tasks = tasks
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._subscribers: list[_Subscriber] = []
        self.commands_sent: Counter[str] = Counter()
        """How many commands of each type went to Pi (shows what discovery really costs)."""
        self.side_usage: dict[str, UsageTally] = {}
        """Usage outside assistant messages since this Pi started, by kind (``cache_warm``)."""
        self._gone = anyio.Event()
        """Set once the dispatcher has seen Pi's stdout end and ``exit_error`` says how."""

    # -- connection facts ------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._transport.pid

    @property
    def alive(self) -> bool:
        return self.exit_error is None

    @property
    def settles_with_event(self) -> bool:
        """Whether this Pi ends runs with ``agent_settled`` (else the client infers it)."""
        return self.install.at_least(*SETTLED_SINCE)

    def take_diagnostics(self) -> list[str]:
        """Pi's stderr lines since the last call: its diagnostics (Pi >= 1 writes a model it
        could not restore, an extension that failed to load, there and nowhere else)."""
        unread = self._transport.stderr.unread
        # Pi colours its warnings for a terminal; a notebook shows the words.
        taken = [_TERMINAL_ESCAPE.sub("", line) for line in unread]
        unread.clear()
        return taken

    # -- plumbing --------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"pk-{next(self._ids)}"

    async def _send(self, record: Mapping[str, Any]) -> None:
        if self.exit_error is not None:
            raise self.exit_error
        try:
            await self._transport.send(record)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            # Pi is gone before the dispatcher has read its stdout to the end (a Pi that
            # exits at once): wait for that, briefly, for its exit code and last words.
            with anyio.move_on_after(EXIT_REAP_TIMEOUT + 1):
                await self._gone.wait()
            raise self.exit_error or PiExited("Pi's stdin is closed: Pi has exited") from None
        self.commands_sent[str(record.get("type"))] += 1

    def _subscribe(self) -> _Subscriber:
        subscriber = _Subscriber()
        if self.exit_error is not None:
            subscriber.send.close()
        else:
            self._subscribers.append(subscriber)
        return subscriber

    def _unsubscribe(self, subscriber: _Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
        subscriber.send.close()
        subscriber.receive.close()

    def _broadcast(self, item: ClientEvent) -> None:
        for subscriber in self._subscribers:
            subscriber.send.send_nowait(item)

    async def _dispatch(self) -> None:
        records = self._transport.records
        stdout_ended = False
        try:
            while True:
                try:
                    item = await take_soon(records)
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
            await self._send(answer)

    async def _closed(self, *, reap: bool) -> None:
        # Only a Pi whose stdout ended is exiting: waiting for the exit code of one that is
        # still running (the client is being closed) would just delay its shutdown.
        returncode = await self._transport.wait(EXIT_REAP_TIMEOUT) if reap else None
        tail = self._transport.stderr.lines(20)
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

    async def request(self, type_: str, *, timeout: float = COMMAND_TIMEOUT, **fields: Any) -> Any:
        """Send one command and return its ``data``; Pi's ``success: false`` raises."""
        request_id = self._next_id()
        pending = _Pending(type_)
        self._pending[request_id] = pending
        sent = anyio.current_time()
        try:
            await self._send({**command(type_, **fields), "id": request_id})
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
        subscriber = self._subscribe()
        try:
            yield Subscription(self, subscriber)
        finally:
            self._unsubscribe(subscriber)

    async def steer(self, message: str) -> None:
        """Queue a message for the running agent, delivered before its next LLM call."""
        await self.request("steer", message=message)

    async def follow_up(self, message: str) -> None:
        """Queue a message for when the running agent has finished."""
        await self.request("follow_up", message=message)

    async def abort(self) -> None:
        """Stop the current run; returns once Pi is idle."""
        await self.request("abort", timeout=ABORT_TIMEOUT)

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
        task_group() as tasks,
    ):
        client = PiClient(transport, install, tasks, ui_handler)
        tasks.start_soon(client._dispatch)
        try:
            await _handshake(client, startup_timeout)
            yield client
        finally:
            tasks.cancel_scope.cancel()


async def _handshake(client: PiClient, timeout: float) -> None:
    where = str(client.install.path)
    try:
        await client.request("get_state", timeout=timeout)
    except PiExited as exc:
        raise _startup_failure(client, exc) from None
    except PiTimeout:
        raise PiTimeout(
            f"its first command during start-up ({where})",
            timeout,
            hint="Pi may be stuck on a prompt or a slow file system; see its stderr.",
        ) from None


def _startup_failure(client: PiClient, exc: PiExited) -> PiExited:
    where = client.install.path
    tail = exc.stderr_tail
    stderr = "\n".join(tail)
    code = f" with code {exc.returncode}" if exc.returncode is not None else ""
    if "enableCompileCache" in stderr or ("SyntaxError" in stderr and "node:" in stderr):
        node = client.install.argv[0] if len(client.install.argv) > 1 else "node on PATH"
        return PiExited(
            f"Pi at {where} exited during start-up{code}: it needs Node >= 22 ({node} is older)",
            returncode=exc.returncode,
            stderr_tail=tail,
            hint="Run `npm ci` in the pi-kernel checkout (it installs node@22 beside Pi).",
        )
    last = tail[-1] if tail else "no output on stderr"
    return PiExited(
        f"Pi at {where} exited during start-up{code}: {last}",
        returncode=exc.returncode,
        stderr_tail=tail,
        hint="Run it by hand with `--mode rpc` to see why, or check PI_KERNEL_PI_PATH.",
    )
