"""Pi's dialogs asked in a cell: the answers each form takes, and that Pi always hears back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from IPython.core.error import StdinNotImplementedError

from pi_kernel.rpc.client import DialogDeclined
from pi_kernel.rpc.protocol import ExtensionUIRequest
from pi_magics.desk import Desk
from pi_magics.dialogs import Dialog, ask, put_dialog


def request(method: str, **fields: Any) -> ExtensionUIRequest:
    return ExtensionUIRequest(id="d1", method=method, title="Sure?", **fields)


def reader(*answers: str) -> tuple[list[str], Any]:
    """A stand-in for the user at ``input()``: the prompts it saw, and the reader."""
    prompts: list[str] = []
    replies: Iterator[str] = iter(answers)

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    return prompts, read


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["y"], {"confirmed": True}),
        (["No"], {"confirmed": False}),
        (["perhaps", " yes "], {"confirmed": True}),
        ([""], {"cancelled": True}),
    ],
)
def test_confirm(answers: list[str], expected: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    prompts, read = reader(*answers)
    answer = ask(request("confirm", message="It matters."), read)
    assert answer == {"type": "extension_ui_response", "id": "d1", **expected}
    assert len(prompts) == len(answers)
    shown = capsys.readouterr().out
    assert shown.startswith("Pi asks: Sure?\nIt matters.\n")
    assert ("'perhaps' is neither yes nor no" in shown) == ("perhaps" in answers)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["2"], {"value": "Block"}),
        (["Allow"], {"value": "Allow"}),
        (["3", "allow", "1"], {"value": "Allow"}),
        ([""], {"cancelled": True}),
    ],
)
def test_select(answers: list[str], expected: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    prompts, read = reader(*answers)
    answer = ask(request("select", options=["Allow", "Block"], timeout=5000), read)
    assert answer == {"type": "extension_ui_response", "id": "d1", **expected}
    assert prompts[0] == "number 1-2 or the option (empty cancels): "
    shown = capsys.readouterr().out
    assert "  1. Allow\n  2. Block\n(Pi stops waiting after 5 s)" in shown
    assert shown.count("is not one of the options") == len(answers) - 1


def test_input_and_editor_take_one_line():
    prompts, read = reader("Ada", "")
    assert ask(request("input", placeholder="a name"), read)["value"] == "Ada"
    assert prompts == ["answer [a name] (empty cancels): "]
    assert ask(request("editor", prefill="old"), read)["cancelled"] is True


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (StdinNotImplementedError("no stdin"), "does not take input"),
        (EOFError(), "no input to read"),
    ],
)
def test_a_frontend_without_input_declines(failure: Exception, reason: str):
    def read(prompt: str) -> str:
        raise failure

    with pytest.raises(DialogDeclined, match=reason):
        ask(request("confirm"), read)


@pytest.mark.anyio
async def test_the_desk_declines_when_no_cell_is_running():
    with pytest.raises(DialogDeclined, match="no cell was running"):
        await put_dialog(Desk(), request("confirm"))


@pytest.mark.anyio
async def test_a_cell_answers_what_is_posted_and_declines_what_it_never_took():
    desk = Desk()
    posted: list[Dialog] = []
    answers: list[Any] = []

    async def wait_for(dialog_request: ExtensionUIRequest) -> None:
        try:
            answers.append(await put_dialog(desk, dialog_request))
        except DialogDeclined as exc:
            answers.append(str(exc))

    async with anyio.create_task_group() as tasks:
        cell = desk.open(posted.append)
        cell.__enter__()
        tasks.start_soon(wait_for, request("confirm"))
        tasks.start_soon(wait_for, request("select"))
        await anyio.wait_all_tasks_blocked()
        assert len(posted) == 2
        # The cell runs on the kernel's main thread: it answers from there, then ends
        # without taking the second one.
        answering = threading.Thread(target=posted[0].reply, args=({"confirmed": True},))
        answering.start()
        answering.join()
        cell.__exit__(None, None, None)
    assert answers == [{"confirmed": True}, "the cell ended before it was answered"]
    with pytest.raises(DialogDeclined, match="no cell was running"):
        await put_dialog(desk, request("confirm"))
