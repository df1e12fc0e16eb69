"""A prompt's run: from the ``prompt`` command until Pi will do nothing more on its own.

That moment is ``agent_settled`` on Pi >= 0.80.4; on older Pi, an ``agent_end`` with no retry
announced followed by an idle ``get_state``.  ``agent_end`` alone is never the end (retries,
compaction and queued follow-ups start new agent runs after it).  Pi >= 1 says in the
prompt's response whether a run started at all (``disposition``), and in ``agent_settled``
whether it was aborted; older Pis are asked (``get_state``) and judged by the last message.

A ``Run`` reaches its client only through ``RunClient``, all public: ids, sending, a feed of
events and responses, the client's timeouts, and what it knows of Pi.  ``PiClient`` is one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import anyio

from .errors import PiCommandError, PiExited, PiTimeout
from .feed import ClientEvent, Feed, FeedItem
from .protocol import (
    AgentEnd,
    AgentMessage,
    AgentSettled,
    AgentStart,
    AssistantMessage,
    AutoRetryEnd,
    AutoRetryStart,
    CompactionEnd,
    MessageEnd,
    Response,
    SessionState,
    command,
)
from .transport import receive_without_checkpoint

logger = logging.getLogger(__name__)


class RunClient(Protocol):
    """What a ``Run`` needs of its client, and all it touches."""

    @property
    def alive(self) -> bool: ...
    @property
    def exit_error(self) -> PiExited | None: ...
    @property
    def settles_with_event(self) -> bool: ...
    @property
    def aborts_starting_run(self) -> bool: ...

    command_timeout: float
    abort_timeout: float

    def next_id(self) -> str: ...
    async def send_record(self, record: Mapping[str, Any]) -> None: ...
    def subscribe(self) -> Feed: ...
    def unsubscribe(self, subscriber: Feed) -> None: ...


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
        self, client: RunClient, message: str, images: Sequence[Mapping[str, Any]] | None
    ) -> None:
        self._client = client
        self._message = message
        self._images = images
        self._subscriber: Feed | None = None
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

    @property
    def started(self) -> bool:
        """Whether Pi started an agent run for the prompt (``agent_start`` came)."""
        return self._saw_agent_start

    async def __aenter__(self) -> Self:
        self._subscriber = self._client.subscribe()
        self._prompt_id = self._client.next_id()
        self._subscriber.watched.add(self._prompt_id)
        record = command("prompt", message=self._message, images=self._images)
        try:
            await self._client.send_record({**record, "id": self._prompt_id})
        except BaseException:
            self._client.unsubscribe(self._subscriber)
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
                deadline = anyio.move_on_after(self._client.abort_timeout)
                with anyio.CancelScope(shield=True), deadline:
                    await self._abort_and_drain()
        finally:
            if self._subscriber is not None:
                self._client.unsubscribe(self._subscriber)

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

    async def _receive(self) -> FeedItem:
        assert self._subscriber is not None, "use the run as an async context manager"
        try:
            if self._check_id is None:
                return await receive_without_checkpoint(self._subscriber.receive)
            # Only the idle check has a deadline; a cancel scope per event would cost more
            # than the event itself.
            with anyio.fail_after(max(0.0, self._check_deadline - anyio.current_time())):
                return await self._subscriber.receive.receive()
        except TimeoutError:
            raise PiTimeout(
                "the idle check after the run (get_state)", self._client.command_timeout
            ) from None
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
        self._check_id = self._client.next_id()
        self._subscriber.watched.add(self._check_id)
        self._check_deadline = anyio.current_time() + self._client.command_timeout
        await self._client.send_record({"type": "get_state", "id": self._check_id})

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
        precedes the answer in stdout and none can leak into the next run.  But Pi starts
        the run only after the prompt's preflight (extension hooks, a compaction), and then
        answers the prompt: before Pi 1.2 an abort that arrives before that stops nothing,
        and the run then streams into the next one.  There the prompt's answer comes first
        (later Pis stop a starting run at once, even during a long compaction).
        """
        assert self._subscriber is not None
        try:
            while not (self._accepted or self.done or self._client.aborts_starting_run):
                item = await self._subscriber.receive.receive()
                if isinstance(item, Response):
                    await self._on_response(item)
                else:
                    await self._on_event(item)
        except PiCommandError:
            return  # rejected: no run to stop (the outcome says why)
        if self.done:
            return
        abort_id = self._client.next_id()
        self._subscriber.watched.add(abort_id)
        await self._client.send_record({"type": "abort", "id": abort_id})
        while True:
            item = await self._subscriber.receive.receive()
            if isinstance(item, Response) and item.id == abort_id:
                break
            if not isinstance(item, Response):
                await self._on_event(item)
        self._finish_from_messages()
        if self.outcome is not None and self.outcome.status == "completed":
            self.outcome.status = "aborted"
