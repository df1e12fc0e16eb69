"""One ``%%pi`` cell while its turn runs: the main thread's side of a turn.

The turn runs on the bridge thread; its events and Pi's dialogs arrive in the cell's inbox.
The cell's thread (the only one that may draw outputs and ask at Jupyter's input prompt)
folds the events into the ``Turn``, refreshes the display at most every ``PUMP_INTERVAL``,
asks the dialogs, and on an interrupt cancels the run and waits briefly for Pi's abort.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import suppress
from functools import partial
from typing import Any, NamedTuple

from pi_kernel.blocks import Block
from pi_kernel.kernel_tools.catalog import KernelToolCall, ToolReply
from pi_kernel.rpc.client import DialogDeclined
from pi_kernel.rpc.feed import ClientEvent
from pi_kernel.rpc.protocol import SessionState
from pi_kernel.turn import Turn, TurnResult

from .approvals import Approval, ask_approval, verdict_text
from .desk import Desk, Errand
from .dialogs import Dialog, Reader, ask
from .notebook_tools import KernelCall
from .render import TurnDisplay

logger = logging.getLogger(__name__)

Item = ClientEvent | SessionState | Errand[Any] | None
Inbox = queue.SimpleQueue[Item]
"""What a running cell reads: the state the turn is asked in (when the run had to read it),
Pi's events, its errands (dialogs, kernel tool calls), and None when the turn is over."""
Redraw = Callable[[], None]
Work = Callable[[KernelToolCall, Redraw], ToolReply]
"""Runs a kernel tool call on the main thread (``Workbench.run``), calling the ``Redraw``
after the code cleared the cell's outputs."""

INTERRUPTED_REPLY = ToolReply(
    "KeyboardInterrupt: the user interrupted this code; the turn is being aborted.",
    is_error=True,
)
Post = Callable[[ClientEvent | SessionState], None]
"""Where the run puts Pi's events for the cell, and the state its turn is asked in."""
Submit = Callable[[Callable[[Post], Awaitable[TurnResult]], Post], Future[TurnResult]]
"""Starts a coroutine function with an argument on the bridge: ``Bridge.submit``."""

PUMP_INTERVAL = 1 / 15
"""Longest wait for Pi's next event before the cell looks at the turn again."""
INTERRUPT_GRACE = 2.0
"""Seconds a cell waits after an interrupt for Pi to confirm the abort before moving on."""


class Request(NamedTuple):
    """A turn as asked: the prompt as sent, and the model and thinking level asked for."""

    prompt: str
    model: str | None
    level: str | None

    def asked_in(self, state: SessionState) -> Request:
        """The request completed from the session's ``state``: what the cell did not name
        (model, level) is the notebook's."""
        return self._replace(
            model=self.model or state.model_ref, level=self.level or state.thinking_level
        )


class CellTurn:
    """A turn streaming into the running cell."""

    def __init__(
        self,
        request: Request,
        display: TurnDisplay,
        desk: Desk,
        read: Reader | None = None,
        work: Work | None = None,
        *,
        ask_timeout: float = 0.0,
        state: SessionState | None = None,
        on_state: Callable[[CellTurn], None] | None = None,
    ) -> None:
        """``state``: the session's, when read before the turn; else the run reads it and
        posts it before Pi's first event, and ``on_state`` is called once it is known (the
        request then names the model and level it was asked with)."""
        self.request = request
        self.state = state
        self._on_state = on_state
        self.turn = Turn(request.prompt)
        self.display = display
        self.desk = desk
        self._read = read
        """How a dialog is answered: Jupyter's ``input()`` unless given."""
        self._work = work
        """How a kernel tool call is run; without it, calls are declined."""
        self._ask_timeout = ask_timeout
        """Seconds an approval waits for its answer (0: as long as it takes)."""
        self.interrupted = False
        # Pi's events and its dialogs, then None when the turn is over: the pump wakes at
        # once, not after its interval, so the cell ends as soon as Pi settles.
        self._inbox: Inbox = queue.SimpleQueue()
        self._ended = threading.Event()
        self._wake = threading.Event()
        """Set when the turn ends or an errand arrives: the pump stops gathering events."""

    def stream(
        self, submit: Submit, run: Callable[[Post], Awaitable[TurnResult]]
    ) -> Future[TurnResult]:
        """Start ``run(post)`` with ``submit`` (the bridge's) and show it until it ends.
        An interrupt cancels it and shows what still arrives until the run has really ended
        (Pi confirmed the abort) or ``INTERRUPT_GRACE`` passed.  Returns the run's future."""

        async def watched(post: Post) -> TurnResult:
            # A cancelled future is done at once, while its task still waits for Pi's
            # abort: the task's own end is what the cell waits for.
            try:
                return await run(post)
            finally:
                self._ended.set()
                self._inbox.put(None)
                self._wake.set()

        with self.desk.open(self._post_errand):
            future = submit(watched, self._inbox.put)
            try:
                while not self._ended.is_set():
                    self._pump()
            except KeyboardInterrupt:
                self.interrupted = True
                future.cancel()
                self.desk.decline_waiting("the cell was interrupted")
                self._settle()
            self._drain(unasked="the turn was over")
        return future

    def outcome(
        self, future: Future[TurnResult], *, stopped: str | None = None
    ) -> TurnResult | None:
        """Close the turn as its run ended: the run's result, None when interrupted;
        the run's error is raised after the turn has recorded it.  ``stopped``: why the
        notebook had Pi abort the run (its budget), to be said in the cell."""
        turn, request = self.turn, self.request
        turn.asked_with(request.model, request.level)
        if self.interrupted:
            turn.finish(None, interrupted=True)
            return None
        error = future.exception()
        if error is not None:
            turn.finish(None, error=str(error))
            raise error
        result = future.result()
        turn.finish(result.outcome, stopped=stopped, level=result.thinking_level)
        return result

    def _post_errand(self, errand: Errand[Any]) -> None:
        # Pi waits on it (a kernel tool call, a question): do it now, not at the next refresh.
        self._inbox.put(errand)
        self._wake.set()

    def _pump(self, *, unasked: str | None = None) -> None:
        """Wait for events, fold them in, refresh the display; then let the next ones gather
        until a refresh is due (one wake-up per refresh, not per event) or the turn ends.
        An errand is done, or declined with the reason ``unasked``."""
        if not self._ended.is_set():
            self._wake.clear()  # what arrives from now on wakes the wait below
        with suppress(queue.Empty):
            # A refresh held back last time is due now: show it without waiting for more.
            item = self._inbox.get(timeout=0 if self.display.pending else PUMP_INTERVAL)
            self._take(item, unasked)
        self._drain(unasked)
        self.display.update(self.turn)
        self._wake.wait(timeout=self.display.next_refresh_in())

    def _drain(self, unasked: str | None = None) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._take(item, unasked)

    def _take(self, item: Item, unasked: str | None) -> None:
        if isinstance(item, Errand):
            if unasked is not None:
                item.decline(unasked)
            elif isinstance(item, Dialog):
                self._ask(item)
            elif isinstance(item, KernelCall):
                self._run(item)
            elif isinstance(item, Approval):
                self._approve(item)
        elif isinstance(item, SessionState):
            self._asked_in(item)
        elif item is not None:
            self.turn.apply(item)

    def _asked_in(self, state: SessionState) -> None:
        self.request = self.request.asked_in(state)
        self.state = state
        if self._on_state is not None:
            self._on_state(self)

    def _ask(self, dialog: Dialog) -> None:
        self.display.update(self.turn, now=True)  # the question comes after what led to it
        # An interrupt while asking leaves the dialog to the desk: when the cell ends it
        # declines what was never answered, so Pi always hears back.
        try:
            answer = ask(dialog.request, self._read)
        except DialogDeclined as exc:
            dialog.decline(str(exc))
        else:
            dialog.reply(answer)

    def _run(self, call: KernelCall) -> None:
        if self._work is None:
            call.decline("this cell does not run kernel tools")
            return
        # The code's own output goes below the block that shows the code: the block first.
        block = self._show_call(call.call)
        try:
            reply = self._work(call.call, partial(self.display.redraw, self.turn, block))
        except KeyboardInterrupt:
            call.reply(INTERRUPTED_REPLY)
            raise  # the cell's interrupt: Pi's turn is aborted
        except Exception as exc:
            # pi-kernel's own failure (the code's errors are replies): Pi hears it, the cell
            # and the turn go on, and the log keeps the traceback.
            logger.exception("kernel tool %s failed", call.call.tool)
            error = "".join(traceback.format_exception_only(exc)).strip()
            reply = ToolReply(f"The kernel could not run {call.call.tool}: {error}", is_error=True)
        call.reply(reply)

    def _show_call(self, call: KernelToolCall) -> Block:
        """Show the call's block as the cell's newest output (made from the call when it
        outran Pi's event for it); what comes next in the cell belongs to it."""
        block = self.turn.tool_called(call.call_id, call.tool, call.args)
        self.display.show_up_to(self.turn, block)
        return block

    def _approve(self, approval: Approval) -> None:
        """Ask the user about a call, with its block (the code, the command) shown above
        the question.  An interrupt leaves it to the desk, which declines it."""
        call = approval.call
        self._show_call(call)
        verdict = ask_approval(
            call, self._read, timeout=self._ask_timeout, code_shown=self.display.streams
        )
        approval.reply(verdict)
        self.turn.approval_answered(call.call_id, verdict_text(verdict))

    def _settle(self) -> None:
        """After an interrupt: wait briefly for Pi's abort, showing what still arrives."""
        deadline = time.monotonic() + INTERRUPT_GRACE
        while not self._ended.is_set() and time.monotonic() < deadline:
            try:
                self._pump(unasked="the cell was interrupted")
            except KeyboardInterrupt:
                break
