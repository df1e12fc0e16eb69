"""Approval when the user wants it (``PiMagics.ask_before``): through real kernels and the
real Pi, whose ``tool_call`` hook (in pi-kernel's extension) holds each call until the cell
has asked.  Every case runs for a kernel tool (Python in the user's namespace) and for Pi's
own ``bash`` (a command that leaves a file)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pi_kernel.kernel_tools.catalog import PYTHON, KernelToolCall
from pi_kernel.transcript import ToolPart, transcripts_in
from pi_magics.approvals import QUESTION, REASON, ask_approval
from pi_magics.tool_blocks import call_details
from tests.support import scripted_llm as script
from tests.support.kernels import CellRun, KernelHarness
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

Answer = Callable[[str], str] | None


@dataclass(frozen=True)
class Subject:
    """A tool whose call leaves a mark named ``mark`` when it runs."""

    tool: str

    def shown(self, mark: str) -> str:
        """What the call's block and question show of it."""
        return f"{mark} = 1" if self.tool == PYTHON else f"touch {mark}"

    def enqueue(self, llm: ScriptedLLM, mark: str, said: str) -> None:
        if self.tool == PYTHON:
            llm.enqueue(*call(PYTHON, said, code=self.shown(mark)))
        else:
            llm.enqueue(*script.tool_then_answer(command=self.shown(mark), answer=said))

    def ran(self, kernel: KernelHarness, cwd: Path, mark: str) -> bool:
        if self.tool == PYTHON:
            return kernel.execute(mark).status == "ok"
        return (cwd / mark).exists()


@pytest.fixture(params=[Subject(PYTHON), Subject("bash")], ids=lambda subject: subject.tool)
def subject(request: pytest.FixtureRequest) -> Subject:
    return request.param  # type: ignore[no-any-return]


def answers(*replies: str) -> Callable[[str], str]:
    """An ``answer`` for the harness: the replies in turn."""
    queue = iter(replies)
    return lambda prompt: next(queue)


def asked_about(
    kernel: KernelHarness,
    llm: ScriptedLLM,
    subject: Subject,
    mark: str,
    answer: Answer,
    said: str = "Done.",
) -> CellRun:
    """A ``%%pi`` cell whose Pi calls ``subject``'s tool, which the notebook asks about
    first; ``answer`` answers (None: the frontend takes no input)."""
    assert kernel.execute(f"%config PiMagics.ask_before = [{subject.tool!r}]").status == "ok"
    subject.enqueue(llm, mark, said)
    run = kernel.execute("%%pi\nRun it.", answer=answer)
    assert run.status == "ok", run.outputs
    return run


def tool_parts(run: CellRun) -> list[ToolPart]:
    (record,) = transcripts_in(run.outputs)
    return [part for part in record.blocks if isinstance(part, ToolPart)]


@pytest.mark.contract
def test_a_yes_runs_the_call_which_was_on_the_page_before_the_question(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    run = asked_about(kernel, llm, subject, "approved_mark", answers("y"))
    assert run.input_prompts == [QUESTION]
    (asked,) = run.input_requests
    shown = subject.shown("approved_mark")
    block_shown = next(
        message
        for message in run.messages
        if shown in str(message["content"].get("data", {}).get("text/plain", ""))
    )
    assert block_shown["header"]["date"] < asked["header"]["date"]
    assert f"Pi wants to run {subject.tool}." in run.text()
    assert subject.ran(kernel, pi_env.cwd, "approved_mark")
    (part,) = tool_parts(run)
    assert part.approval == "approved"
    assert "· approved" in run.text()


@pytest.mark.contract
def test_a_no_with_a_reason_keeps_the_call_from_running_and_pi_reads_why(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    answer = answers("n", "not on my data")
    run = asked_about(kernel, llm, subject, "denied_mark", answer, "Understood.")
    assert run.input_prompts == [QUESTION, REASON]
    told = tool_result(llm.requests[1])
    assert f"The user did not approve this {subject.tool} call." in told
    assert "Their reason: not on my data" in told
    assert not subject.ran(kernel, pi_env.cwd, "denied_mark")
    (part,) = tool_parts(run)
    assert part.approval == "not approved: the user said no: not on my data"
    assert "Understood." in run.text("text/markdown")


def test_always_stops_asking_about_that_tool_for_the_kernels_life(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    first = asked_about(kernel, llm, subject, "first_mark", answers("what?", "a"))
    assert first.input_prompts == [QUESTION, QUESTION]  # a wrong answer is asked again
    assert "'what?' is not an answer here" in first.text()
    subject.enqueue(llm, "second_mark", "Again.")
    second = kernel.execute("%%pi\nAgain.", answer=answers())  # nothing to answer
    assert second.status == "ok", second.outputs
    assert second.input_prompts == []
    assert subject.ran(kernel, pi_env.cwd, "second_mark")
    status = kernel.execute("%pi status").text()
    assert f"Ask first: {subject.tool} (always approved now: {subject.tool})" in status


def test_no_frontend_input_is_a_no_and_the_turn_goes_on(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    # allow_stdin off, as nbclient and papermill run
    run = asked_about(kernel, llm, subject, "unasked_mark", None, "It was not approved.")
    told = tool_result(llm.requests[1])
    assert "this frontend takes no input, so no one could be asked" in told
    assert not subject.ran(kernel, pi_env.cwd, "unasked_mark")
    assert "It was not approved." in run.text("text/markdown")
    assert "not approved: this frontend takes no input" in run.text()


@pytest.mark.timing
def test_no_answer_within_the_timeout_is_a_no(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    assert kernel.execute("%config PiMagics.ask_timeout = 1").status == "ok"

    def away(prompt: str) -> str:
        time.sleep(4)  # the user comes back too late: the 1 s passed, with room to spare
        return "y"

    run = asked_about(kernel, llm, subject, "late_mark", away)
    assert "no answer within 1 s" in tool_result(llm.requests[1])
    assert not subject.ran(kernel, pi_env.cwd, "late_mark")
    (part,) = tool_parts(run)
    assert part.approval == "not approved: no answer within 1 s"


@pytest.mark.timing
def test_an_interrupt_while_asking_is_a_no_and_ends_the_turn(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, subject: Subject
):
    assert kernel.execute(f"%config PiMagics.ask_before = [{subject.tool!r}]").status == "ok"
    subject.enqueue(llm, "interrupted_mark", "Never said.")

    def interrupt(prompt: str) -> str:
        kernel.interrupt()
        time.sleep(3)  # the interrupt lands (the cell ends) before this yes comes, too late
        return "y"

    run = kernel.execute("%%pi\nTry.", answer=interrupt)
    assert "Interrupted" in run.text()
    assert not subject.ran(kernel, pi_env.cwd, "interrupted_mark")
    assert "Never said." not in run.text("text/markdown")
    (record,) = transcripts_in(run.outputs)
    assert record.status == "interrupted"


def test_bashs_whole_command_is_beside_the_question(kernel: KernelHarness, llm: ScriptedLLM):
    command = "echo one && echo two-" + "x" * 100  # longer than a block's summary shows
    assert kernel.execute("%config PiMagics.ask_before = ['*']").status == "ok"
    llm.enqueue(*script.tool_then_answer(command=command, answer="Ran."))
    run = kernel.execute("%%pi\nRun it.", answer=answers("yes"))
    assert run.status == "ok", run.outputs
    assert f"$ {command}\n" in run.text()
    assert "two-" in tool_result(llm.requests[1])


def test_a_cell_can_ask_first_for_itself(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*script.tool_then_answer(command="echo cell-ask", answer="Asked."))
    run = kernel.execute("%%pi --ask bash,edit\nRun it.", answer=answers("n", "no"))
    assert run.status == "ok", run.outputs
    assert run.input_prompts == [QUESTION, REASON]
    # The next cell asks nothing: the notebook's own list is empty.
    llm.enqueue(*script.tool_then_answer(command="echo unasked", answer="Ran."))
    again = kernel.execute("%%pi\nRun it.", answer=answers())
    assert again.input_prompts == []
    assert "unasked" in tool_result(llm.requests[3])


def test_a_replayed_cell_shows_the_answers_and_asks_nothing(
    kernel: KernelHarness, llm: ScriptedLLM, tmp_path: Path
):
    cassette = tmp_path / "approvals.jsonl"
    assert kernel.execute(f"%pi record {cassette}").status == "ok"
    live = asked_about(kernel, llm, Subject(PYTHON), "recorded", answers("n", "later"))
    assert kernel.execute("%pi record off").status == "ok"
    assert kernel.execute(f"%pi replay {cassette}").status == "ok"
    replayed = kernel.execute("%%pi\nRun it.", answer=answers())
    assert replayed.status == "ok", replayed.outputs
    assert replayed.input_prompts == []
    assert "not approved: the user said no: later" in replayed.text()
    assert tool_parts(replayed) == tool_parts(live)


def test_a_wrong_answer_is_said_and_asked_again_without_a_kernel(
    capsys: pytest.CaptureFixture[str],
):
    replies = iter(["maybe", "ALWAYS"])
    call_ = KernelToolCall("bash", "c1", {"command": "rm -rf build\r# harmless"})
    verdict = ask_approval(call_, lambda prompt: next(replies), code_shown=True)
    assert verdict.allowed
    assert verdict.always
    printed = capsys.readouterr().out
    assert "$ rm -rf build␍# harmless" in printed
    assert "'maybe' is not an answer here" in printed


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"path": "a.py", "edits": [{"oldText": "x = 1\ny = 2", "newText": "x = 1\ny = 3"}]},
            "--- a.py\n+++ a.py\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3",
        ),
        (
            {"path": "b.py", "oldText": "print('a')", "newText": "print('b')"},  # Pi 0.73
            "--- b.py\n+++ b.py\n@@ -1 +1 @@\n-print('a')\n+print('b')",
        ),
    ],
    ids=["edits", "old and new text"],
)
def test_an_edit_is_asked_about_with_its_path_and_diff(arguments: dict[str, object], expected: str):
    assert call_details("edit", arguments, code_shown=True) == expected


def test_a_write_shows_its_path_and_content_and_code_only_where_no_block_shows_it():
    assert call_details("write", {"path": "n.txt", "content": "hi\x1b[2J"}, code_shown=True) == (
        "n.txt:\nhi␛[2J"
    )
    assert call_details(PYTHON, {"code": "x = 1"}, code_shown=True) == ""
    assert call_details(PYTHON, {"code": "x = 1"}, code_shown=False) == "x = 1"
