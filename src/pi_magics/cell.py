"""One ``%%pi`` cell while its turn runs: the main thread's side of a turn.

The turn runs on the bridge thread; its events and Pi's dialogs arrive in the cell's inbox.
The cell's thread (the only one that may draw outputs and ask at Jupyter's input prompt)
folds the events into the ``Turn``, refreshes the display at most every ``PUMP_INTERVAL``,
asks the dialogs, and on an interrupt cancels the run and waits briefly for Pi's abort.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import NamedTuple

from pi_kernel.rpc.client import ClientEvent, DialogDeclined
from pi_kernel.turn import Turn, TurnResult

from .dialogs import Dialog, DialogDesk, Reader, ask
from .render import TurnDisplay

Inbox = queue.SimpleQueue[ClientEvent | Dialog | None]
"""What a running cell reads: Pi's events, its dialogs, and None when the turn is over."""
Post = Callable[[ClientEvent], None]
"""Where the run puts Pi's events for the cell."""
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


class CellTurn:
    """A turn streaming into the running cell."""

    def __init__(
        self,
        request: Request,
        display: TurnDisplay,
        dialogs: DialogDesk,
        read: Reader | None = None,
    ) -> None:
        self.request = request
        self.turn = Turn(request.prompt)
        self.display = display
        self.dialogs = dialogs
        self._read = read
        """How a dialog is answered: Jupyter's ``input()`` unless given."""
        self.interrupted = False
        # Pi's events and its dialogs, then None when the turn is over: the pump wakes at
        # once, not after its interval, so the cell ends as soon as Pi settles.
        self._inbox: Inbox = queue.SimpleQueue()
        self._ended = threading.Event()

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

        with self.dialogs.open(self._inbox.put):
            future = submit(watched, self._inbox.put)
            try:
                while not self._ended.is_set():
                    self._pump()
            except KeyboardInterrupt:
                self.interrupted = True
                future.cancel()
                self.dialogs.decline_waiting("the cell was interrupted")
                self._settle()
            self._drain(unasked="the turn was over")
        return future

    def outcome(self, future: Future[TurnResult]) -> TurnResult | None:
        """Close the turn as its run ended: the run's result, None when interrupted;
        the run's error is raised after the turn has recorded it."""
        turn, request = self.turn, self.request
        turn.thinking_level = request.level
        # Pi names the model at the end of its first message; a turn without one (interrupted
        # or failed early, an extension command) still ran on the model it was asked of, and
        # its footer and transcript say so.
        if turn.model is None and request.model and "/" in request.model:
            turn.provider, _, turn.model = request.model.partition("/")
        if self.interrupted:
            turn.finish(None, interrupted=True)
            return None
        error = future.exception()
        if error is not None:
            turn.error = str(error)
            turn.finish(None)
            raise error
        result = future.result()
        turn.thinking_level = result.thinking_level
        turn.finish(result.outcome)
        return result

    def _pump(self, *, unasked: str | None = None) -> None:
        """Wait for events, fold them in, refresh the display; then let the next ones gather
        until a refresh is due (one wake-up per refresh, not per event) or the turn ends.
        A dialog is asked, or declined with the reason ``unasked``."""
        with suppress(queue.Empty):
            # A refresh held back last time is due now: show it without waiting for more.
            item = self._inbox.get(timeout=0 if self.display.pending else PUMP_INTERVAL)
            self._take(item, unasked)
        self._drain(unasked)
        self.display.update(self.turn)
        self._ended.wait(timeout=self.display.next_refresh_in())

    def _drain(self, unasked: str | None = None) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._take(item, unasked)

    def _take(self, item: ClientEvent | Dialog | None, unasked: str | None) -> None:
        if isinstance(item, Dialog):
            if unasked is not None:
                item.decline(unasked)
                return
            self.display.update(self.turn, now=True)  # the question comes after what led to it
            # An interrupt while asking leaves the dialog to the desk: when the cell ends it
            # declines what was never answered, so Pi always hears back.
            try:
                answer = ask(item.request, self._read)
            except DialogDeclined as exc:
                item.decline(str(exc))
            else:
                item.reply(answer)
        elif item is not None:
            self.turn.apply(item)

    def _settle(self) -> None:
        """After an interrupt: wait briefly for Pi's abort, showing what still arrives."""
        deadline = time.monotonic() + INTERRUPT_GRACE
        while not self._ended.is_set() and time.monotonic() < deadline:
            try:
                self._pump(unasked="the cell was interrupted")
            except KeyboardInterrupt:
                break
