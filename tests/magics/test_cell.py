"""A ``%%pi`` cell while its turn runs: events shown as they come, dialogs asked after what
led to them, interrupts that cancel the run and still show Pi's abort.

The run is a coroutine on the real bridge thread, posting events from a recorded Pi trace
(``tests/data/traces/087``) and asking through the real dialog desk; the display is
render's recording fake.  No kernel and no Pi: the cell's logic alone, with Ctrl-C raised
where a real one lands (in a display update, or at the input prompt).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest

from pi_kernel.bridge import Bridge
from pi_kernel.kernel_tools.catalog import VARIABLES, KernelToolCall, ToolReply
from pi_kernel.rpc.client import DialogDeclined
from pi_kernel.rpc.errors import PiCommandError
from pi_kernel.rpc.feed import ClientEvent, ClientNotice
from pi_kernel.rpc.protocol import ExtensionUIRequest, Response
from pi_kernel.rpc.run import RunOutcome
from pi_kernel.rpc.transport import decode_line
from pi_kernel.turn import TurnResult
from pi_magics import cell as cell_module
from pi_magics.cell import INTERRUPT_GRACE, CellTurn, Post, Request
from pi_magics.desk import Desk
from pi_magics.dialogs import put_dialog
from pi_magics.notebook_tools import KernelCall
from pi_magics.render import TurnDisplay
from tests.support.fake_frontend import Frontend, Output
from tests.support.pis import DATA

TRACES = DATA / "traces" / "087"
REQUEST = Request("Say hello", "scripted/model-a", "low")


def events_of(trace: str) -> list[ClientEvent]:
    records = (decode_line(line) for line in (TRACES / trace).read_bytes().split(b"\n") if line)
    return [r for r in records if r is not None and not isinstance(r, Response | Exception)]


def result(level: str = "medium") -> TurnResult:
    return TurnResult(RunOutcome("completed"), "scripted/model-a", level)


class Interrupting(Frontend):
    """A frontend whose ``interrupts``-th display call (new output or update) gets Ctrl-C,
    as if the user pressed stop just then."""

    def __init__(self, *at: int) -> None:
        super().__init__()
        self.interrupts = set(at)
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.calls in self.interrupts:
            raise KeyboardInterrupt

    def __call__(self, obj: Mapping[str, str], /, *, raw: bool, display_id: bool) -> Output:
        self._call()
        output = super().__call__(obj, raw=raw, display_id=display_id)
        frontend = self
        original = output.update

        def update(bundle: Mapping[str, str], /, *, raw: bool) -> None:
            frontend._call()
            original(bundle, raw=raw)

        output.update = update  # type: ignore[method-assign]
        return output


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    bridge = Bridge()
    yield bridge
    bridge.close()


def cell_of(frontend: Frontend, desk: Desk | None = None, read: Any = None) -> CellTurn:
    return CellTurn(REQUEST, TurnDisplay(frontend), desk or Desk(), read)


def test_events_stream_into_the_cell_and_the_result_closes_the_turn(bridge: Bridge):
    frontend = Frontend()
    cell = cell_of(frontend)

    async def run(post: Post) -> TurnResult:
        for event in events_of("text.jsonl"):
            post(event)
            await anyio.sleep(0.01)
        return result()

    future = cell.stream(bridge.submit, run)
    assert cell.outcome(future) == result()
    assert cell.turn.status == "completed"
    assert cell.turn.thinking_level == "medium"  # what Pi ran with, not what was asked
    assert cell.turn.text.strip()
    cell.display.finish(cell.turn)
    assert cell.turn.text.strip() in "".join(frontend.plain())


def test_a_dialog_is_asked_after_what_led_to_it_and_its_answer_reaches_pi(bridge: Bridge):
    frontend = Frontend()
    desk = Desk()
    shown_when_asked: list[list[str]] = []

    def read(prompt: str) -> str:
        shown_when_asked.append(frontend.plain())
        return "y"

    async def run(post: Post) -> TurnResult:
        post(ClientNotice(message="about to ask"))
        answer = await put_dialog(desk, ExtensionUIRequest(id="d1", method="confirm", title="Go?"))
        post(ClientNotice(message=f"answered {answer['confirmed']}"))
        return result()

    cell = cell_of(frontend, desk, read)
    cell.outcome(cell.stream(bridge.submit, run))
    assert any("about to ask" in text for text in shown_when_asked[0])
    assert any("answered True" in block.text for block in cell.turn.visible_blocks)


def test_an_interrupt_cancels_the_run_and_shows_what_arrives_while_pi_aborts(bridge: Bridge):
    frontend = Interrupting(1)
    declined: list[str] = []

    async def run(post: Post) -> TurnResult:
        post(ClientNotice(message="working"))
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                # The run's abort: Pi confirms, and an extension asks once more.
                await anyio.sleep(0.2)
                post(ClientNotice(message="Pi confirmed the abort"))
                try:
                    await put_dialog(desk, ExtensionUIRequest(id="d2", method="confirm", title="?"))
                except DialogDeclined as exc:
                    declined.append(str(exc))
        raise AssertionError("unreachable")

    desk = Desk()
    cell = cell_of(frontend, desk)
    future = cell.stream(bridge.submit, run)
    assert cell.interrupted
    assert future.cancelled()
    assert cell.outcome(future) is None
    assert cell.turn.status == "interrupted"
    texts = [getattr(block, "text", "") for block in cell.turn.blocks]
    assert "Pi confirmed the abort" in texts  # shown, though it came after the interrupt
    assert declined == ["the cell was interrupted"]


@pytest.mark.timing
def test_an_interrupt_at_the_input_prompt_declines_the_dialog_so_pi_can_abort(bridge: Bridge):
    desk = Desk()
    heard: list[str] = []
    handlers: list[asyncio.Task[None]] = []

    def read(prompt: str) -> str:
        raise KeyboardInterrupt

    async def handle() -> None:
        try:
            await put_dialog(desk, ExtensionUIRequest(id="d1", method="confirm", title="Go?"))
        except DialogDeclined as exc:
            heard.append(str(exc))

    async def run(post: Post) -> TurnResult:
        # The client answers Pi's dialogs from its own task, outside the run: cancelling
        # the run does not answer them, the cell must.
        handlers.append(asyncio.get_running_loop().create_task(handle()))
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    cell = cell_of(Frontend(), desk, read)
    started = time.monotonic()
    future = cell.stream(bridge.submit, run)
    assert time.monotonic() - started < INTERRUPT_GRACE
    assert cell.interrupted
    assert future.cancelled()
    bridge.call(_wait, handlers[0])
    assert heard == ["the cell was interrupted"]


async def _wait(task: asyncio.Task[None]) -> None:
    await task


class SlowAbort:
    """A run that works until cancelled, then takes until ``release`` to wind down (a Pi
    slow to confirm its abort)."""

    def __init__(self) -> None:
        self.aborting = threading.Event()
        self._done: anyio.Event | None = None

    async def __call__(self, post: Post) -> TurnResult:
        post(ClientNotice(message="working"))
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                self._done = anyio.Event()
                self.aborting.set()
                await self._done.wait()
        raise AssertionError("unreachable")

    def release(self, bridge: Bridge) -> None:
        assert self.aborting.wait(5)
        bridge.call(self._release)

    async def _release(self) -> None:
        assert self._done is not None
        self._done.set()


@pytest.mark.timing
def test_a_second_interrupt_while_pi_aborts_ends_the_cell_at_once(bridge: Bridge):
    run = SlowAbort()
    frontend = Interrupting(1, 2)
    cell = cell_of(frontend)
    started = time.monotonic()
    future = cell.stream(bridge.submit, run)
    try:
        assert time.monotonic() - started < INTERRUPT_GRACE
        assert cell.interrupted
        assert cell.outcome(future) is None
        assert frontend.calls == 2  # the second Ctrl-C came at the next refresh
    finally:
        run.release(bridge)


@pytest.mark.timing
def test_an_abort_pi_never_confirms_ends_the_cell_after_the_grace(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
):
    grace = INTERRUPT_GRACE / 4  # the same wait, without sleeping out the real 2 s
    monkeypatch.setattr(cell_module, "INTERRUPT_GRACE", grace)
    run = SlowAbort()
    cell = cell_of(Interrupting(1))
    started = time.monotonic()
    future = cell.stream(bridge.submit, run)
    try:
        assert grace <= time.monotonic() - started < grace + 1
        assert cell.outcome(future) is None
        assert cell.turn.status == "interrupted"
    finally:
        run.release(bridge)


def test_a_failed_run_raises_its_error_after_the_turn_keeps_it(bridge: Bridge):
    async def run(post: Post) -> TurnResult:
        raise PiCommandError("prompt", "no such model")

    cell = cell_of(Frontend())
    future = cell.stream(bridge.submit, run)
    with pytest.raises(PiCommandError):
        cell.outcome(future)
    assert cell.turn.status == "failed"
    assert cell.turn.error == "Pi rejected prompt: no such model"
    # Pi never named the model: the turn ran on the one it was asked of.
    assert (cell.turn.provider, cell.turn.model) == ("scripted", "model-a")
    assert cell.turn.thinking_level == "low"


def test_a_kernel_tool_that_fails_in_pi_kernel_itself_answers_pi_and_the_cell_goes_on(
    bridge: Bridge,
):
    desk = Desk()
    replies: list[ToolReply] = []

    def broken(call: KernelToolCall, redraw: object) -> ToolReply:
        raise RuntimeError("a bug in the tool")

    async def run(post: Post) -> TurnResult:
        call = KernelToolCall(VARIABLES, "c1", {})
        replies.append(await desk.bring(KernelCall(call), no_cell="no cell"))
        return result()

    cell = CellTurn(REQUEST, TurnDisplay(Frontend()), desk, work=broken)
    assert cell.outcome(cell.stream(bridge.submit, run)) == result()
    [reply] = replies
    assert reply.is_error
    assert reply.text == (
        "The kernel could not run notebook_variables: RuntimeError: a bug in the tool"
    )
