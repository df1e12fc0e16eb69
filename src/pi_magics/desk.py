"""Errands for the running cell: what the bridge thread needs done on the kernel's main thread.

Pi's extension dialogs must be asked with the cell's ``input()``, and Pi's kernel tools must
run in the user's namespace, never beside the user's code: both only the thread running the
cell may do.  So the bridge posts an errand to the running cell and waits for its answer; the
cell's loop does it and answers.  With no cell running the errand is refused at once, and what
a cell leaves undone when it ends is declined: the bridge is never left waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager, suppress
from typing import Generic, TypeVar

A = TypeVar("A")


class Declined(Exception):
    """The errand was not done; the message says why."""


class Errand(Generic[A]):
    """Something for the running cell to do, and the future its answer goes into."""

    def __init__(self) -> None:
        self.answer: Future[A] = Future()

    def refusal(self, reason: str) -> Exception:
        """The error its waiter gets when it is not done."""
        return Declined(reason)

    def reply(self, answer: A) -> None:
        with suppress(InvalidStateError):  # the waiter already gave up
            self.answer.set_result(answer)

    def decline(self, reason: str) -> None:
        with suppress(InvalidStateError):
            self.answer.set_exception(self.refusal(reason))


class Desk:
    """Where the bridge loop finds the cell that can do an errand (the main thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._post: Callable[[Errand[object]], None] | None = None
        self._waiting: list[Errand[object]] = []

    @property
    def cell_running(self) -> bool:
        return self._post is not None

    @contextmanager
    def open(self, post: Callable[[Errand[object]], None]) -> Iterator[None]:
        """While a cell runs, errands are posted to it; what it did not do (not taken, or
        interrupted while doing it) is declined when it ends."""
        self._post = post
        try:
            yield
        finally:
            with self._lock:
                self._post = None
            self.decline_waiting("the cell ended before it was answered")

    def decline_waiting(self, reason: str) -> None:
        """Decline every errand still waiting for its answer (an interrupted cell's: Pi's
        abort would otherwise wait for it)."""
        with self._lock:
            waiting = list(self._waiting)
        for errand in waiting:
            errand.decline(reason)

    async def bring(self, errand: Errand[A], *, no_cell: str) -> A:
        """Post ``errand`` to the running cell and wait for its answer; with no cell running,
        its refusal with the reason ``no_cell``."""
        with self._lock:
            if self._post is None:
                raise errand.refusal(no_cell)
            self._waiting.append(errand)  # type: ignore[arg-type]  # answers are read only by their waiter
            self._post(errand)  # type: ignore[arg-type]
        try:
            return await asyncio.wrap_future(errand.answer)
        finally:
            with self._lock:
                self._waiting.remove(errand)  # type: ignore[arg-type]
