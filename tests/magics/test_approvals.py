"""Approval when the user wants it (``PiMagics.ask_before``): through real kernels and the
real Pi, whose ``tool_call`` hook (in pi-kernel's extension) holds each call until the cell
has asked, for a kernel tool and for Pi's own ``bash``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from pi_kernel.kernel_tools.catalog import PYTHON, KernelToolCall
from pi_kernel.transcript import MIMETYPE
from pi_magics.approvals import QUESTION, REASON, ask_approval
from tests.support import scripted_llm as script
from tests.support.kernels import CellRun, KernelHarness
from tests.support.scripted_llm import ScriptedLLM, call, tool_result

ASK_PYTHON = f"%config PiMagics.ask_before = [{PYTHON!r}]"


def answers(*replies: str) -> Any:
    """An ``answer`` for the harness: the replies in turn."""
    queue = iter(replies)
    return lambda prompt: next(queue)


def asked_about(
    kernel: KernelHarness,
    llm: ScriptedLLM,
    code: str,
    answer: Callable[[str], str] | None,
    said: str = "Done.",
) -> CellRun:
    """A ``%%pi`` cell whose Pi runs ``code`` with notebook_python, which the notebook asks
    about first; ``answer`` answers (None: the frontend takes no input)."""
    assert kernel.execute(ASK_PYTHON).status == "ok"
    llm.enqueue(*call(PYTHON, said, code=code))
    run = kernel.execute("%%pi\nRun it.", answer=answer)
    assert run.status == "ok", run.outputs
    return run


def transcript_of(run: Any) -> dict[str, Any]:
    (record,) = [o["data"][MIMETYPE] for o in run.outputs if MIMETYPE in o.get("data", {})]
    return dict(record)


def tool_parts(run: Any) -> list[dict[str, Any]]:
    return [part for part in transcript_of(run)["blocks"] if part["type"] == "tool"]


@pytest.mark.contract
def test_a_yes_runs_the_code_which_was_on_the_page_before_the_question(
    kernel: KernelHarness, llm: ScriptedLLM
):
    run = asked_about(kernel, llm, "approved_value = 7", answers("y"))
    assert run.input_prompts == [QUESTION]
    (asked,) = run.input_requests
    code_shown = next(
        message
        for message in run.messages
        if "approved_value = 7" in str(message["content"].get("data", {}).get("text/plain", ""))
    )
    assert code_shown["header"]["date"] < asked["header"]["date"]
    assert "Pi wants to run notebook_python." in run.text()
    assert kernel.execute("assert approved_value == 7").status == "ok"
    (part,) = tool_parts(run)
    assert part["approval"] == "approved"
    assert "· approved" in run.text()


def test_a_no_with_a_reason_keeps_the_code_from_running_and_pi_reads_why(
    kernel: KernelHarness, llm: ScriptedLLM
):
    run = asked_about(
        kernel, llm, "denied_value = 1", answers("n", "not on my data"), "Understood."
    )
    assert run.input_prompts == [QUESTION, REASON]
    told = tool_result(llm.requests[1])
    assert "The user did not approve this notebook_python call." in told
    assert "Their reason: not on my data" in told
    assert kernel.execute("denied_value").status == "error"  # never ran
    (part,) = tool_parts(run)
    assert part["approval"] == "not approved: the user said no: not on my data"
    assert "Understood." in run.text("text/markdown")


def test_always_stops_asking_about_that_tool_for_the_kernels_life(
    kernel: KernelHarness, llm: ScriptedLLM
):
    first = asked_about(kernel, llm, "count = 1", answers("what?", "a"))
    assert first.input_prompts == [QUESTION, QUESTION]  # a wrong answer is asked again
    assert "'what?' is not an answer here" in first.text()
    llm.enqueue(*call(PYTHON, "Two.", code="count += 1"))
    second = kernel.execute("%%pi\nTwo.", answer=answers())  # nothing to answer
    assert second.status == "ok", second.outputs
    assert second.input_prompts == []
    assert kernel.execute("assert count == 2").status == "ok"
    status = kernel.execute("%pi status").text()
    assert "Ask first: notebook_python (always approved now: notebook_python)" in status


def test_no_frontend_input_is_a_no_and_the_turn_goes_on(kernel: KernelHarness, llm: ScriptedLLM):
    # allow_stdin off, as nbclient and papermill run
    run = asked_about(kernel, llm, "unasked = 1", None, "It was not approved.")
    told = tool_result(llm.requests[1])
    assert "this frontend takes no input, so no one could be asked" in told
    assert "It was not approved." in run.text("text/markdown")
    assert "not approved: this frontend takes no input" in run.text()


def test_no_answer_within_the_timeout_is_a_no(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("%config PiMagics.ask_timeout = 1").status == "ok"

    def away(prompt: str) -> str:
        time.sleep(2.5)  # the user comes back too late
        return "y"

    run = asked_about(kernel, llm, "late = 1", away)
    assert "no answer within 1 s" in tool_result(llm.requests[1])
    assert kernel.execute("late").status == "error"
    (part,) = tool_parts(run)
    assert part["approval"] == "not approved: no answer within 1 s"


def test_an_interrupt_while_asking_is_a_no_and_ends_the_turn(
    kernel: KernelHarness, llm: ScriptedLLM
):
    assert kernel.execute(ASK_PYTHON).status == "ok"
    llm.enqueue(*call(PYTHON, "Never said.", code="interrupted_value = 1"))

    def interrupt(prompt: str) -> str:
        kernel.interrupt()
        time.sleep(0.5)  # the interrupt lands before the answer would
        return "y"

    run = kernel.execute("%%pi\nTry.", answer=interrupt)
    assert "Interrupted" in run.text()
    assert kernel.execute("interrupted_value").status == "error"
    assert "Never said." not in run.text("text/markdown")
    assert transcript_of(run)["status"] == "interrupted"


@pytest.mark.contract
def test_pis_own_bash_waits_for_the_answer(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("%config PiMagics.ask_before = ['bash']").status == "ok"
    llm.enqueue(
        *script.tool_then_answer(command="echo approved-ran", answer="Ran."),
        *script.tool_then_answer(command="echo denied-ran", answer="Did not run."),
    )
    yes = kernel.execute("%%pi\nRun it.", answer=answers("yes"))
    assert yes.status == "ok", yes.outputs
    assert "$ echo approved-ran" in yes.text()  # the whole command beside the question
    assert "approved-ran" in tool_result(llm.requests[1])
    no = kernel.execute("%%pi\nRun the other.", answer=answers("no", ""))
    assert no.status == "ok", no.outputs
    told = tool_result(llm.requests[3])
    assert "The user did not approve this bash call." in told
    assert "denied-ran\n" not in told  # only the command, never its output
    assert "Tools:" in kernel.execute("%pi status").text()


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
    kernel: KernelHarness, llm: ScriptedLLM, tmp_path: Any
):
    cassette = tmp_path / "approvals.jsonl"
    assert kernel.execute(ASK_PYTHON).status == "ok"
    assert kernel.execute(f"%pi record {cassette}").status == "ok"
    llm.enqueue(*call(PYTHON, "Declined.", code="recorded = 1"))
    live = kernel.execute("%%pi\nRecord me.", answer=answers("n", "later"))
    assert live.status == "ok", live.outputs
    assert kernel.execute("%pi record off").status == "ok"
    assert kernel.execute(f"%pi replay {cassette}").status == "ok"
    replayed = kernel.execute("%%pi\nRecord me.", answer=answers())
    assert replayed.status == "ok", replayed.outputs
    assert replayed.input_prompts == []
    assert "not approved: the user said no: later" in replayed.text()
    assert json.dumps(tool_parts(replayed)) == json.dumps(tool_parts(live))


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
