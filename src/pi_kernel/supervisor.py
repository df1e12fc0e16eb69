"""The one Pi process of a notebook: started on demand, stopped, restarted, never two at once.

``PiSupervisor`` owns a task group; each Pi process lives in a task of that group, inside
``open_client`` (and, with kernel tools, beside a ``ToolChannel`` of its own), until it is
stopped.  A Pi that died is replaced by the next ``client()``; a failed start leaves nothing
behind, so the next call simply tries again; a restart waits until the old process is gone
before it starts the new one.  What a session does with a new Pi (give it the notebook's
model) runs in ``on_start``, under the same lock, so nobody sees the Pi before that.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .kernel_tools.catalog import OFFER_COMMAND
from .kernel_tools.channel import ToolChannel, ToolHandler
from .rpc.client import PiClient, UIHandler, cancel_dialog, open_client
from .rpc.errors import PiError
from .rpc.launch import PiInstall, locate_pi
from .rpc.transport import task_group
from .sandbox import Sandbox, confine

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PiProcess:
    """One Pi process: its client, its tool channel, and the events that stop it and tell
    it is gone."""

    client: PiClient
    stop: anyio.Event
    gone: anyio.Event
    channel: ToolChannel | None = None
    takes_offers: bool | None = None
    """Whether this Pi's extension takes a run's offer as a command (None: not asked yet)."""

    async def offer_tools(self) -> bool:
        """Give the run about to start its tools, approvals and budget flag, before its
        prompt, and wait until Pi's extension has them: it then need not ask the kernel at
        the run's start (an extension without the command asks then).  True: offered."""
        if self.channel is None:
            return False
        if self.takes_offers is None:
            commands = await self.client.get_commands()
            self.takes_offers = any(command.name == OFFER_COMMAND for command in commands)
        if self.takes_offers:
            offer = json.dumps(self.channel.offer())
            await self.client.request("prompt", message=f"/{OFFER_COMMAND} {offer}")
        return self.takes_offers

    async def withdraw_offer(self) -> None:
        """Take back an offer no run took (the prompt started none): a run that Pi starts
        later for something else asks the kernel, rather than taking this cell's choice."""
        await self.client.request("prompt", message=f"/{OFFER_COMMAND}")


class PiSupervisor:
    """Starts, stops and restarts one Pi.  Use ``async with PiSupervisor(...) as pi``.

    The launch settings are public attributes: a change applies to the next start.
    """

    def __init__(
        self,
        *,
        pi_path: str | None = None,
        args: Sequence[str] = (),
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        ui_handler: UIHandler = cancel_dialog,
        tools: ToolHandler | None = None,
        sandbox: Sandbox | None = None,
        pi_path_hint: str = "",
        on_start: Callable[[PiClient], Awaitable[None]] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """``tools``: the notebook's tools for Pi; each Pi started then loads the extension
        that offers them, with a channel of its own.  ``sandbox``: each Pi starts inside it (see
        ``pi_kernel.sandbox``), or not at all.  ``on_start`` prepares a new Pi before
        anyone else gets it; ``on_stop`` runs whenever a Pi is let go.  ``pi_path_hint``:
        how this program's user sets the Pi to run, for the error when none can."""
        self.pi_path = pi_path
        self.args = tuple(args)
        self.cwd = cwd or os.getcwd()
        self.env = env
        self.ui_handler = ui_handler
        self.tools = tools
        self.sandbox = sandbox
        self.pi_path_hint = pi_path_hint
        self._on_start = on_start
        self._on_stop = on_stop
        self.install: PiInstall | None = None
        self.starts = 0
        """How many Pi processes have been started (a new one has a new state)."""
        self.last_error: str | None = None
        """Why the last start failed, until one succeeds."""
        self.current: PiProcess | None = None
        """The Pi started last, alive or not, until it is stopped."""
        self.resume_session: str | None = None
        """A session file the next Pi starts on (``--session``): once, for the next start."""
        self._start_lock = anyio.Lock()
        self._starting: anyio.CancelScope | None = None
        """The start under way, if any: ``stop`` cancels it."""
        self._stack = AsyncExitStack()
        self._tasks: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tasks = await self._stack.enter_async_context(task_group())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self._stop_process()
        if self._tasks is not None:
            # A start still under way (the pre-warm) has no process to stop yet; cancelling
            # it makes open_client stop the Pi it was starting instead of waiting forever.
            self._tasks.cancel_scope.cancel()
        await self._stack.aclose()

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.client.alive

    async def client(self) -> PiClient:
        """The live client, starting Pi first if none runs (or the last one died)."""
        async with self._start_lock:
            if self.current is not None and self.current.client.alive:
                return self.current.client
            if self.current is not None:
                logger.info("this notebook's Pi has exited; starting a new one")
            await self._stop_process()
            resume, self.resume_session = self.resume_session, None
            try:
                self.install = self._locate()
                assert self._tasks is not None, "use PiSupervisor as an async context manager"
                with anyio.CancelScope() as self._starting:
                    self.current = await self._tasks.start(self._serve, self.install, resume)
            except PiError as exc:
                self.last_error = str(exc)
                logger.info("Pi did not start: %s", exc)
                raise
            if self.current is None:  # stop() cancelled the start (it stopped what it began)
                raise PiError("Pi's start was stopped: its settings changed meanwhile.")
            self.last_error = None
            self.starts += 1
            if self._on_start is not None:
                await self._on_start(self.current.client)
            return self.current.client

    def _locate(self) -> PiInstall:
        return locate_pi(self.pi_path, also=self.pi_path_hint)

    async def stop(self) -> None:
        """Stop Pi now, or the start under way; the next ``client()`` starts a new one."""
        if self._starting is not None:  # a silent Pi would hold the start for its timeout
            self._starting.cancel()
        async with self._start_lock:
            await self._stop_process()

    async def restart(self) -> PiClient:
        logger.info("restarting this notebook's Pi")
        await self.stop()
        return await self.client()

    async def _serve(
        self, install: PiInstall, resume: str | None, *, task_status: TaskStatus[PiProcess]
    ) -> None:
        stop, gone = anyio.Event(), anyio.Event()
        try:
            async with AsyncExitStack() as stack:
                args, env = self.args, self.env
                if resume is not None:
                    args = (*args, "--session", resume)
                channel = None
                if self.tools is not None:
                    # A channel per Pi process: a new Pi gets a new secret.
                    channel = await stack.enter_async_context(ToolChannel(self.tools))
                    args = (*channel.args, *args)
                    env = {**(os.environ if env is None else env), **channel.env}
                if self.sandbox is not None:
                    env = os.environ if env is None else env
                    folder = channel.path.parent if channel is not None else None
                    argv = await confine(
                        self.sandbox, install.argv, cwd=self.cwd, env=env, channel=folder
                    )
                    install = dataclasses.replace(install, argv=tuple(argv))
                client = await stack.enter_async_context(
                    open_client(
                        install, args=args, cwd=self.cwd, env=env, ui_handler=self.ui_handler
                    )
                )
                task_status.started(PiProcess(client, stop, gone, channel))
                await stop.wait()
        finally:
            gone.set()

    async def _stop_process(self) -> None:
        if self._on_stop is not None:
            self._on_stop()
        process, self.current = self.current, None
        if process is not None:
            process.stop.set()
            await process.gone.wait()
