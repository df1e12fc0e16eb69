"""One Pi for one notebook: its choices (model, thinking level), discovery, conversations
and turns.

``PiSession`` is an async context manager; the Pi process itself (start, stop, restart, at
most one at a time) is its ``PiSupervisor``'s.  A new Pi gets the notebook's model and level
before anyone uses it; a Pi let go releases the session file this notebook claimed.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, AsyncExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio

from .agent_dir import SessionClaim, agent_dir, find_session, no_models_hint, settings_kept
from .choices import Choices, parse_model_ref
from .conversation import NotebookConversation, Placement, TreeRow, tree_unreadable
from .errors import (
    PiChoiceError,
    PiCommandError,
    PiError,
    PiExited,
    PiNoModels,
    PiSessionNotFound,
    PiTimeout,
)
from .kernel_tools.catalog import KERNEL_COMMANDS
from .kernel_tools.channel import ChannelStats, ToolHandler
from .rpc.client import PiClient, UIHandler, cancel_dialog
from .rpc.feed import ClientEvent
from .rpc.launch import PiInstall
from .rpc.protocol import ImageContent, ModelInfo, SessionState, SessionStats, SlashCommand
from .rpc.run import Run
from .rpc.transport import task_group
from .rpc.usage import UsageTally
from .supervisor import PiProcess, PiSupervisor
from .turn import TurnResult

logger = logging.getLogger(__name__)


RESTORE_TIMEOUT = 5.0
"""Seconds to put back the model and thinking level after a cell that overrode them."""
DISCOVERY_TIMEOUT = 15.0
"""Seconds for discovery (models, current state, levels) before it is reported as stuck."""


FOLLOW_TIMEOUT = 10.0
"""Seconds to label a turn in Pi's session tree once it ended."""
SLEEP_TIMEOUT = 5.0
"""Seconds an idle Pi has to say which session file it is on before it is stopped."""
SESSION_CHOOSERS = frozenset(
    {"--session", "--continue", "-c", "--resume", "-r", "--no-session", "--fork", "--session-id"}
)
"""Pi arguments that choose the session themselves: such a Pi is never put to sleep, since it
could not be started again on the same one."""
STATUS_ANSWER_TIMEOUT = 1.0
"""Seconds ``status`` waits for Pi's own answers before it says Pi is not answering."""


@dataclass
class SessionStatus:
    """What ``%pi status`` shows."""

    install: PiInstall | None
    cwd: str
    running: bool
    pid: int | None = None
    state: SessionState | None = None
    last_error: str | None = None
    stats: SessionStats | None = None
    """Pi's own totals for the conversation (``get_session_stats``), where it has them."""
    side_usage: dict[str, UsageTally] = field(default_factory=dict)
    """Usage outside the answers since this Pi started (idle cache warming), by kind."""
    tools: ChannelStats | None = None
    """What the kernel tools' channel of this Pi served (None: no kernel tools)."""
    answering: bool = True
    """False: the process is there and did not answer within ``STATUS_ANSWER_TIMEOUT``."""
    asleep_since: float | None = None
    """When Pi was stopped for being idle (``idle_stop``); None: it was not."""


class PiSession:
    """One Pi for one notebook.  Use ``async with PiSession(...) as session``."""

    def __init__(
        self,
        *,
        pi_path: str | None = None,
        args: Sequence[str] = (),
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        ui_handler: UIHandler = cancel_dialog,
        discovery_timeout: float = DISCOVERY_TIMEOUT,
        tools: ToolHandler | None = None,
        pi_path_hint: str = "",
    ) -> None:
        """``tools``: the notebook's tools for Pi (run Python in the kernel, ...); each
        Pi started then loads the extension that offers them, with a channel of its own.
        ``pi_path_hint``: how the user sets the Pi to run, for the error when none can."""
        self._claim = SessionClaim()
        """The session file this notebook's Pi writes, claimed against other kernels."""
        self.pi = PiSupervisor(
            pi_path=pi_path,
            args=args,
            cwd=cwd,
            env=env,
            ui_handler=ui_handler,
            tools=tools,
            pi_path_hint=pi_path_hint,
            on_start=self._on_start,
            on_stop=self._let_go,
        )
        """The Pi process: its launch settings (``pi.pi_path``, ``pi.args``, ...) and life."""
        self.discovery_timeout = discovery_timeout
        self.chosen_model: str | None = None
        """The notebook's model (``provider/id``), chosen in the picker: a new Pi gets it too."""
        self.chosen_level: str | None = None
        """The notebook's thinking level, likewise."""
        self.conversation = NotebookConversation()
        """Each cell's place in Pi's session tree, for turns asked with a cell."""
        self._turn_lock = anyio.Lock()
        """Held while a turn runs: one prompt at a time per notebook."""
        self._models: list[ModelInfo] | None = None
        self._gone_side: dict[str, UsageTally] = {}
        """What the Pis already let go spent outside the answers, by kind."""
        self.idle_stop = 0.0
        """Seconds without a turn after which Pi is stopped, to start again on the same
        session at the next turn (0: never)."""
        self.asleep_since: float | None = None
        """When Pi was stopped for being idle; None while it was not."""
        self._last_turn = time.monotonic()
        self._idle_changed = anyio.Event()
        self._sleeping = False
        """An idle Pi is being stopped (holding the turn lock): a turn waits for it."""
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self.pi)
        tasks = await self._stack.enter_async_context(task_group())
        self._stack.callback(tasks.cancel_scope.cancel)  # runs first: the watch ends
        tasks.start_soon(self._stop_when_idle)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    # -- sleeping when idle -----------------------------------------------------------------

    def idle_changed(self) -> None:
        """``idle_stop`` changed, or a turn began or ended: the watch looks again (call it
        in the session's event loop)."""
        self._idle_changed.set()

    async def set_idle_stop(self, seconds: float) -> None:
        """Stop Pi after ``seconds`` without a turn (0: never), counted from now."""
        self.idle_stop = seconds
        self._last_turn = time.monotonic()
        self.idle_changed()

    def _idle_left(self) -> float:
        """Seconds until an idle Pi is due to sleep (inf: not while it is not running, runs
        a turn, or never sleeps)."""
        if self.idle_stop <= 0 or not self.pi.running or self._turn_lock.locked():
            return math.inf
        return max(0.0, self._last_turn + self.idle_stop - time.monotonic())

    async def _stop_when_idle(self) -> None:
        while True:
            self._idle_changed = anyio.Event()
            with anyio.move_on_after(self._idle_left()):
                await self._idle_changed.wait()
            if self._idle_left() == 0:
                await self._sleep()

    async def _sleep(self) -> None:
        """Stop an idle Pi, to start it again on its session file at the next turn."""
        async with self._turn_lock:  # no turn starts while it stops
            self._sleeping = True
            try:
                await self._stop_idle()
            finally:
                self._sleeping = False

    async def _stop_idle(self) -> None:
        current = self.pi.current
        if current is None or not current.client.alive:
            return
        self._last_turn = time.monotonic()  # not due again before another idle_stop
        if SESSION_CHOOSERS.intersection(self.pi.args):
            return  # it could not be started again on the same session
        try:
            with anyio.fail_after(SLEEP_TIMEOUT):
                session_file = (await current.client.get_state()).session_file
        except (PiError, TimeoutError):
            return  # not answering: the next turn finds out and says so
        if not session_file:
            return  # in memory only: stopping it would lose the conversation
        logger.info("stopping Pi after %g s without a turn", self.idle_stop)
        # Set first: whoever asks for Pi next (a turn, the picker) starts it on this
        # session, and a Pi started meanwhile clears them.
        self.pi.resume_session, self.asleep_since = session_file, time.time()
        await self.pi.stop()
        self._claim.hold(session_file)  # still this notebook's, asleep

    # -- the process (the supervisor's), as the notebook sees it ---------------------------

    @property
    def cwd(self) -> str:
        return self.pi.cwd

    @property
    def env(self) -> Mapping[str, str] | None:
        return self.pi.env

    @property
    def install(self) -> PiInstall | None:
        return self.pi.install

    @property
    def starts(self) -> int:
        return self.pi.starts

    @property
    def last_error(self) -> str | None:
        return self.pi.last_error

    @property
    def running(self) -> bool:
        return self.pi.running

    async def client(self) -> PiClient:
        """The live client, starting Pi first if none runs (or the last one died)."""
        return await self.pi.client()

    async def _on_start(self, client: PiClient) -> None:
        self._models = None
        self.asleep_since = None
        self._last_turn = time.monotonic()  # woken for the picker, say: not straight back
        self.idle_changed()
        await self._apply_choices(client)

    async def prewarm(self) -> None:
        """Start Pi in the background; a failure is kept and shown by the first real use."""
        with suppress(PiError):
            await self.client()

    async def stop(self) -> None:
        """Stop Pi now, or the start under way; the next call that needs it starts a new one
        (on a new session, even when this one was asleep)."""
        self.pi.resume_session, self.asleep_since = None, None
        await self.pi.stop()

    async def restart(self) -> PiClient:
        self.pi.resume_session, self.asleep_since = None, None
        return await self.pi.restart()

    async def _apply_choices(self, client: PiClient) -> None:
        """Give a new Pi the notebook's model and level; a refusal clears them, loudly."""
        model, level = self.chosen_model, self.chosen_level
        try:
            if model is not None:
                await self._send_model(client, *parse_model_ref(model))
            if level is not None:
                await self._send_level(client, level)
        except PiCommandError as exc:
            self.chosen_model = self.chosen_level = None
            state = await client.get_state()
            now = state.model_ref or "no model"
            self.pi.last_error = (
                f"The new Pi refused the notebook's choice (model {model}, thinking {level}): "
                f"{exc.pi_message}. It runs {now}, thinking {state.thinking_level}, now."
            )
            raise PiChoiceError(self.pi.last_error, hint="Choose again with %pi picker.") from None

    def _settings_kept(self) -> AbstractContextManager[None]:
        return settings_kept(agent_dir(self.pi.env or os.environ) / "settings.json")

    # The commands themselves, with the user's global settings kept as they were.

    async def _send_model(self, client: PiClient, provider: str, model_id: str) -> ModelInfo:
        with self._settings_kept():
            return await client.set_model(provider, model_id)

    async def _send_level(self, client: PiClient, level: str) -> None:
        with self._settings_kept():
            await client.set_thinking_level(level)

    # -- discovery -------------------------------------------------------------------------

    async def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """Pi's available models, cached for this Pi process."""
        client = await self.client()
        if self._models is None or refresh:
            self._models = await client.get_available_models()
        return self._models

    async def commands(self) -> list[SlashCommand]:
        """Pi's slash commands: prompt templates, skills and extension commands (but the
        ones pi-kernel's extension keeps for the kernel)."""
        commands = await (await self.client()).get_commands()
        return [command for command in commands if command.name not in KERNEL_COMMANDS]

    async def state(self) -> SessionState:
        return await (await self.client()).get_state()

    async def status(self) -> SessionStatus:
        """What runs and with which settings; never starts Pi just to answer."""
        status = SessionStatus(
            self.install,
            self.cwd,
            self.running,
            last_error=self.last_error,
            asleep_since=self.asleep_since,
        )
        if self.pi.current is not None:
            client = self.pi.current.client
            status.pid = client.pid
            status.side_usage = {kind: replace(t) for kind, t in client.side_usage.items()}
            if self.pi.current.channel is not None:
                status.tools = self.pi.current.channel.stats()
            if client.alive:
                # Status is what people ask when something is wrong: a Pi that stopped
                # answering is reported at once, with what the kernel itself knows.
                with anyio.move_on_after(STATUS_ANSWER_TIMEOUT) as asking:
                    status.state = await client.get_state()
                    with suppress(PiCommandError):  # a Pi without the command: no totals
                        status.stats = await client.get_session_stats()
                status.answering = not asking.cancelled_caught
            elif client.exit_error is not None:
                status.last_error = str(client.exit_error)
        return status

    async def take_diagnostics(self) -> list[str]:
        """What the running Pi wrote on stderr since this was last asked (its diagnostics)."""
        return self.pi.current.client.take_diagnostics() if self.pi.current is not None else []

    async def side_usage(self, kind: str | None = None) -> UsageTally:
        """The session's usage of ``kind`` outside the answers so far, over every Pi it ran
        (``cache_warm``: idle prompt-cache refreshes; None: every kind summed); never starts
        Pi to answer."""
        tallies = [self._gone_side]
        if self.pi.current is not None:
            tallies.append(self.pi.current.client.side_usage)
        total = UsageTally()
        for by_kind in tallies:
            for each, tally in by_kind.items():
                if kind is None or each == kind:
                    total = total.plus(tally)
        return total

    def _let_go(self) -> None:
        """A Pi is let go (asleep, restarted, gone): what it spent outside the answers stays
        the session's, and so does nothing of its session file's claim."""
        process = self.pi.current
        if process is not None:
            for kind, tally in process.client.side_usage.items():
                self._gone_side[kind] = self._gone_side.get(kind, UsageTally()).plus(tally)
        self._claim.release()

    async def choices(self, *, refresh: bool = False, state: SessionState | None = None) -> Choices:
        """Discovery for the picker: models (cached unless ``refresh``), state (unless
        given, fresh from Pi) and levels.

        Raises ``PiNotFound``/``PiExited`` when Pi cannot run, ``PiNoModels`` when it offers
        none, ``PiTimeout`` when it does not answer within ``discovery_timeout``.
        """
        client = await self.client()  # starting Pi has its own time limit and messages
        try:
            with anyio.fail_after(self.discovery_timeout):
                models = await self.models(refresh=refresh)
                if not models:
                    raise PiNoModels("Pi runs but offers no models.", hint=no_models_hint())
                if state is None:
                    state = await client.get_state()
                levels = await client.get_available_thinking_levels()
        except TimeoutError:
            raise PiTimeout(
                "discovery (models, state, thinking levels)",
                self.discovery_timeout,
                hint="Pi may be busy or stuck; retry, or %pi restart.",
            ) from None
        return Choices(models, state, levels)

    async def set_notebook_model(self, ref: str) -> Choices:
        """Make ``provider/id`` the notebook's model, if Pi accepts it (Pi's own check: a
        model it does not offer, or one without credentials, is refused)."""
        provider, model_id = parse_model_ref(ref)
        await self._send_model(await self.client(), provider, model_id)
        return await self._chosen()

    async def set_notebook_thinking_level(self, level: str) -> Choices:
        """Make ``level`` the notebook's thinking level; it must be one the model supports."""
        await self._set_supported_level(level)
        return await self._chosen()

    async def _chosen(self) -> Choices:
        # What Pi now runs is the notebook's choice, even if the discovery after it fails.
        state = await (await self.client()).get_state()
        self.chosen_model = state.model_ref
        self.chosen_level = state.thinking_level
        return await self.choices(state=state)

    # -- settings --------------------------------------------------------------------------

    async def find_model(self, ref: str) -> ModelInfo:
        """The available model named ``provider/id``, or an error listing the choices."""
        provider, model_id = parse_model_ref(ref)
        models = await self.models()
        for model in models:
            if model.provider == provider and model.id == model_id:
                return model
        if not models:
            raise PiNoModels(
                f"Pi offers no models, so {ref!r} cannot be used.", hint=no_models_hint()
            )
        choices = ", ".join(sorted(model.ref for model in models))
        raise PiChoiceError(f"Pi has no model {ref!r}. Available: {choices}")

    async def _set_offered_model(self, ref: str) -> ModelInfo:
        """Switch Pi to ``provider/id`` if Pi offers it (a turn's ``--model``)."""
        model = await self.find_model(ref)
        return await self._send_model(await self.client(), model.provider, model.id)

    async def _set_supported_level(self, level: str) -> str:
        """Set the level if the current model supports it (a turn's ``--thinking``, or the
        notebook's choice); return the effective level."""
        client = await self.client()
        levels = await client.get_available_thinking_levels()
        if level not in levels:
            state = await client.get_state()
            model = state.model_ref or "the current model"
            raise PiChoiceError(
                f"{model} does not support thinking level {level!r}. Available: {', '.join(levels)}"
            )
        await self._send_level(client, level)
        return (await client.get_state()).thinking_level

    async def new_session(self) -> None:
        switch = await (await self.client()).new_session()
        if switch.cancelled:
            raise PiCommandError("new_session", "an extension cancelled the new session")
        self._claim.release()  # the new session is claimed by its first turn

    async def resume(
        self, target: str | None = None, *, last_session_id: str | None = None
    ) -> SessionState:
        """Continue an earlier conversation: ``target`` is a session file path or a session
        id; by default the session ``last_session_id`` names, else the newest earlier session
        of this working directory.  A session that does not exist is an error, checked here
        because Pi's ``switch_session`` would silently create the file."""
        client = await self.client()
        current = await client.get_state()
        if not current.session_file:
            raise PiSessionNotFound(
                "This Pi keeps its conversation in memory (--no-session), so it has no "
                "session store to resume from.",
                hint="Remove --no-session from PiMagics.pi_args to keep sessions.",
            )
        path = find_session(
            target or last_session_id, Path(current.session_file), self.cwd, self._claim.taken
        )
        switch = await client.switch_session(str(path))
        if switch.cancelled:
            raise PiCommandError("switch_session", "an extension cancelled the switch")
        self._claim.hold(str(path))
        return await client.get_state()

    async def conversation_tree(self) -> tuple[str | None, list[TreeRow]]:
        """The session's id and its prompts as a tree, read fresh from Pi."""
        client = await self.client()
        if (reason := tree_unreadable(client)) is not None:
            raise PiError(f"{reason}.", hint="Pi's own /tree shows it in a terminal.")
        state = await client.get_state()
        await self.conversation.refresh(client, state.session_id)
        return state.session_id, self.conversation.rows()

    async def export_html(self, path: str) -> str:
        """Pi's own HTML export of the whole session, written to ``path``."""
        return await (await self.client()).export_html(path)

    async def abort(self) -> None:
        if self.running:
            assert self.pi.current is not None
            await self.pi.current.client.abort()

    # -- turns -----------------------------------------------------------------------------

    async def run_turn(
        self,
        prompt: str,
        on_event: Callable[[ClientEvent], object],
        *,
        model: str | None = None,
        thinking: str | None = None,
        new: bool = False,
        before: SessionState | None = None,
        images: Sequence[ImageContent] = (),
        cell: str | None = None,
        on_state: Callable[[SessionState], object] | None = None,
    ) -> TurnResult:
        """Send ``prompt`` and feed every event to ``on_event`` until Pi settles.

        ``model`` and ``thinking`` apply to this turn only: they are validated against what
        Pi offers before anything is sent, and put back afterwards.  ``before`` is the state
        the caller has just read, so it is not asked for again (with ``new`` it is); without
        it the state is read here, and ``on_state`` hears it before anything is sent.
        ``images`` go with the prompt (checked by the caller: Pi takes what it is given).
        ``cell``: the notebook cell asking, when the conversation follows the notebook's
        cells (``conversation``): a cell asked before is asked again where it was first
        asked.
        """
        if self._turn_lock.locked() and not self._sleeping:
            # One Pi runs one prompt at a time; a second one at once (a thread, a widget
            # callback) would be taken by Pi as a queued message, not as a turn of its own.
            raise PiError(
                "A Pi turn is already running in this notebook: wait for it, or stop it with "
                "%pi abort."
            )
        try:
            async with self._turn_lock:  # also waits for an idle Pi being put to sleep
                self.idle_changed()
                return await self._turn(
                    prompt, on_event, model, thinking, new, before, images, cell, on_state
                )
        finally:
            self._last_turn = time.monotonic()
            self.idle_changed()  # the lock is free again: the watch counts from now

    async def _turn(
        self,
        prompt: str,
        on_event: Callable[[ClientEvent], object],
        model: str | None,
        thinking: str | None,
        new: bool,
        before: SessionState | None,
        images: Sequence[ImageContent],
        cell: str | None,
        on_state: Callable[[SessionState], object] | None,
    ) -> TurnResult:
        client = await self.client()
        if new:
            await self.new_session()
        process = self.pi.current
        if process is not None and process.client is not client:
            process = None  # replaced meanwhile: its own extension asks for the offer
        before, offered = await _read_and_offer(client, process, None if new else before)
        run: Run | None = None
        try:
            if on_state is not None:
                on_state(before)
            placement, linear = None, None
            if cell is not None:
                linear = await self.conversation.unavailable(client)
                if linear is None:
                    placement = await self.conversation.place(client, before.session_id, cell)
            prompt_entry, follow_problem = None, None
            try:
                if model is not None:
                    await self._set_offered_model(model)
                if thinking is not None:
                    await self._set_supported_level(thinking)
                state = await client.get_state() if model or thinking else before
                sent = [image.model_dump(mode="json", by_alias=True) for image in images]
                run = client.prompt(prompt, images=sent or None)
                async with run:
                    async for event in run:
                        on_event(event)
                assert run.outcome is not None
            except PiCommandError as exc:
                if exc.command == "prompt" and not await self._has_models(client):
                    raise PiNoModels(
                        f"Pi cannot answer: {exc.pi_message}", hint=no_models_hint()
                    ) from None
                raise
            finally:
                if (model is not None or thinking is not None) and client.alive:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(RESTORE_TIMEOUT):
                        await self._restore(client, before)
                if placement is not None and client.alive:
                    prompt_entry, follow_problem = await self._settle(client, placement)
        finally:
            if process is not None and offered and (run is None or not run.started):
                await _withdraw(process)
        self._claim.hold(state.session_file)
        return TurnResult(
            run.outcome,
            state.model_ref,
            state.thinking_level,
            state.session_id,
            state.session_file,
            placement=placement,
            prompt_entry=prompt_entry,
            linear=linear,
            follow_problem=follow_problem,
        )

    async def _settle(
        self, client: PiClient, placement: Placement
    ) -> tuple[str | None, str | None]:
        """Label the turn in Pi's tree, even after an interrupt: its prompt entry, or what
        went wrong (the answer is whole either way)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(FOLLOW_TIMEOUT) as waiting:
            try:
                return await self.conversation.settle(client, placement), None
            except PiError as exc:
                logger.warning("labelling the turn failed: %s", exc)
                return None, str(exc)
        assert waiting.cancelled_caught
        return None, f"Pi did not label this cell's prompt within {FOLLOW_TIMEOUT:g} s."

    async def _has_models(self, client: PiClient) -> bool:
        try:
            return bool(await client.get_available_models())
        except PiExited:
            return True  # the exit is the error worth reporting, not the models

    async def _restore(self, client: PiClient, before: SessionState) -> None:
        if before.model is not None:
            await self._send_model(client, before.model.provider, before.model.id)
        await self._send_level(client, before.thinking_level)


async def _read_and_offer(
    client: PiClient, process: PiProcess | None, before: SessionState | None
) -> tuple[SessionState, bool]:
    """The session's state (``before``, else read now) and whether the run's offer went to
    Pi's extension (``process``: None when there is none to give), both in one round trip:
    no run can start before the prompt, so nothing takes the offer meanwhile."""
    offered = False

    async def offer() -> None:
        nonlocal offered
        offered = process is not None and await process.offer_tools()

    if before is not None:
        await offer()
        return before, offered
    try:
        async with task_group() as tasks:
            tasks.start_soon(offer)
            before = await client.get_state()
    except BaseException:
        if process is not None:
            await _withdraw(process)  # it may have arrived before the failure
        raise
    return before, offered


async def _withdraw(process: PiProcess) -> None:
    """Take back an offer no run took; Pi's own failure, if any, is the one reported."""
    if not process.client.alive:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(RESTORE_TIMEOUT), suppress(PiError):
        await process.withdraw_offer()
