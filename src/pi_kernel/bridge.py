"""The one background event-loop thread that runs the async engine for the sync magics.

IPython runs magics synchronously on the kernel's main thread.  The engine is async, and
its Pi process must outlive any one cell, so it runs in a long-lived anyio blocking portal
(one thread, one event loop).  Cells submit work and wait; an interrupt cancels the
submitted task, which sends Pi a courtesy ``abort`` before it ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, ExitStack
from typing import TypeVar, TypeVarTuple

from anyio.from_thread import BlockingPortal, start_blocking_portal

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Interrupted(Exception):
    """The cell was interrupted while it waited for Pi; what it waited for was cancelled."""

    def __str__(self) -> str:
        return "Interrupted while waiting for Pi; what it was doing was cancelled."

    def _render_traceback_(self) -> list[str]:
        # IPython's hook: one line for an expected event, not a traceback through the loop.
        return [str(self)]


class Bridge:
    """A running event loop in a daemon-like thread, until ``close``."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.portal: BlockingPortal = self._stack.enter_context(
            start_blocking_portal(backend="asyncio")
        )

    def call(self, func: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """Run ``func(*args)`` on the loop and wait for its result.  An interrupt (the
        stop button) cancels it and raises ``Interrupted``."""
        future = self.portal.start_task_soon(func, *args)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise Interrupted from None

    def submit(self, func: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> Future[T]:
        """Start ``func(*args)`` on the loop; cancelling the future cancels the task."""
        return self.portal.start_task_soon(func, *args)

    def enter(self, manager: AbstractAsyncContextManager[T]) -> T:
        """Enter an async context manager on the loop; it is exited by ``close``."""
        return self._stack.enter_context(self.portal.wrap_async_context_manager(manager))

    def close(self) -> None:
        """Exit what was entered (newest first), then stop the loop and its thread."""
        self._stack.close()
