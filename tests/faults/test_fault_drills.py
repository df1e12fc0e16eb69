"""Fault drills: what breaks around a running cell (Pi, the model's server, the kernel), and
what must hold anyway.  Each drill is bounded (every cell has a timeout), keeps what was
shown (the partial answer stays, the transcript records what happened) and leaves no
process behind (the suite's autouse fixture checks that after each test)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import psutil
import pytest

from pi_kernel.transcript import CUT_OFF_LABEL, NoticePart, ToolPart, Transcript, transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import (
    DISPLAY_MESSAGES,
    CellRun,
    KernelHarness,
    running_kernel,
)
from tests.support.pi_env import PiEnv
from tests.support.pis import DATA
from tests.support.scripted_llm import ScriptedLLM

EXTENSIONS = DATA / "extensions"
DRILL_TIMEOUT = 30.0
"""Seconds any one drill cell may take; past that the drill fails instead of hanging."""


def transcript(run: CellRun) -> Transcript:
    [saved] = transcripts_in(run.outputs)
    return saved


def markdown(run: CellRun) -> str:
    return run.text("text/markdown")


def test_pi_killed_mid_stream_keeps_the_partial_answer_and_records_the_error(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("partial " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("A new Pi answers."))
    pi = kernel.wait_for_pi()

    def kill_once_text_shows(message: dict[str, Any]) -> None:
        shown = json.dumps(message["content"].get("data", {}))
        if message["msg_type"] in DISPLAY_MESSAGES and "partial" in shown and pi.is_running():
            os.killpg(pi.pid, signal.SIGKILL)

    run = kernel.execute(
        "%%pi\nTalk slowly.", on_message=kill_once_text_shows, timeout=DRILL_TIMEOUT
    )
    assert run.status == "error"
    assert "partial" in markdown(run)  # what arrived before the kill is still shown
    record = transcript(run)
    assert record.status == "failed"
    assert record.errors
    assert "partial" in record.text
    after = kernel.execute("%%pi\nBack?", timeout=DRILL_TIMEOUT)
    assert "A new Pi answers." in markdown(after)
    assert [p.pid for p in kernel.pis()] != [pi.pid]
    assert len(kernel.pis()) == 1


@pytest.mark.parametrize(
    ("replies", "notice"),
    [
        (script.dropped_then_answer(answer="Answered after the drop."), "terminated"),
        (script.error_then_answer(500, answer="Answered after the 500."), "500"),
    ],
    ids=["dropped-connection", "http-500"],
)
def test_a_failing_model_server_is_retried_and_the_retry_is_recorded(
    kernel: KernelHarness, llm: ScriptedLLM, replies: list[script.Reply], notice: str
):
    llm.enqueue(*replies)
    run = kernel.execute("%%pi\nAnswer despite the server.", timeout=DRILL_TIMEOUT)
    assert run.status == "ok", run.error_text
    record = transcript(run)
    assert record.status == "completed"
    assert record.text.startswith("Answered after the")
    notices = [part.text for part in record.blocks if isinstance(part, NoticePart)]
    assert any("retry" in text.lower() and notice in text for text in notices), notices
    assert len(llm.requests) == 2


def test_text_shown_before_a_dropped_connection_stays_in_the_cell_and_its_transcript(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*script.dropped_then_answer("Partial words before the drop", "Answered anew."))
    run = kernel.execute("%%pi\nAnswer despite the drop.", timeout=DRILL_TIMEOUT)
    assert run.status == "ok", run.error_text
    assert "Partial words" in run.text("text/markdown")  # still in the cell, where it was
    record = transcript(run)
    assert record.text == "Answered anew."  # the answer (and --out) is the retry's alone
    [cut] = [p.text for p in record.blocks if isinstance(p, NoticePart) and "Cut off" in p.text]
    assert cut.startswith(f"{CUT_OFF_LABEL} Partial words")


def test_a_model_server_that_stalls_times_out_and_the_retry_answers(
    pi_env: PiEnv, llm: ScriptedLLM
):
    settings_path = pi_env.agent_dir / "settings.json"
    settings = json.loads(settings_path.read_text())
    settings["httpIdleTimeoutMs"] = 1500  # Pi's own idle timeout, shortened for the drill
    settings_path.write_text(json.dumps(settings))
    llm.enqueue(script.stalled("This answer hangs half way through", after=3, seconds=20))
    llm.enqueue(script.text("Answered after the stall."))
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        run = kernel.execute("%%pi\nAnswer despite the stall.", timeout=DRILL_TIMEOUT)
    assert run.status == "ok", run.error_text
    record = transcript(run)
    assert record.text == "Answered after the stall."
    notices = [part.text for part in record.blocks if isinstance(part, NoticePart)]
    assert any("retry" in text.lower() for text in notices), notices
    assert len(llm.requests) == 2  # the stalled request, then the retry


def test_a_20_mb_tool_result_on_pis_stdout_is_cut_and_the_kernel_carries_on(
    kernel: KernelHarness, llm: ScriptedLLM
):
    # Pi's bash tool cuts its own output at 50 KB, so an extension swaps the result for
    # 20 MB: Pi then writes records of that size to its stdout.
    flood = ["--extension", str(EXTENSIONS / "flood_result.ts")]
    assert kernel.execute(f"%config PiMagics.pi_args = {flood!r}").status == "ok"
    # 20 MB is far past the context window: Pi compacts (a summary request) before sending
    # the result to the model, and again after the answer.
    llm.enqueue(
        script.tool_calls(("bash", {"command": "echo small"})),
        script.text("Summary: the user asked for a flood."),
        script.text("That was a lot."),
        script.text("Summary: a flood, answered."),
        script.text("Still fine."),
    )
    run = kernel.execute("%%pi\nFlood the output.", timeout=DRILL_TIMEOUT)
    assert run.status == "ok", run.error_text
    record = transcript(run)
    [tool] = [part for part in record.blocks if isinstance(part, ToolPart)]
    assert tool.output_cut >= 19_000_000  # cut at the documented size, the rest counted
    assert len(tool.output) <= 20_200
    assert record.text == "That was a lot."
    notices = [part.text for part in record.blocks if isinstance(part, NoticePart)]
    assert any("compact" in text.lower() for text in notices), notices
    assert run.display_bytes < 2_000_000  # the frontend never got the flood
    assert len(json.dumps(llm.requests[2])) > 20_000_000  # the model did: it was real
    after = kernel.execute("%%pi\nOK?", timeout=DRILL_TIMEOUT)
    assert "Still fine." in markdown(after)


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 1e6


def test_200_cells_in_a_row_keep_one_pi_and_bounded_memory(kernel: KernelHarness, llm: ScriptedLLM):
    cells = 200
    llm.enqueue(*(script.text(f"Answer number {n}.") for n in range(cells)))
    kernel_process = psutil.Process(kernel.pid)
    pis: set[int] = set()
    samples: list[tuple[float, float]] = []
    for n in range(cells):
        run = kernel.execute(f"%%pi --quiet\nQuestion {n}?", timeout=DRILL_TIMEOUT)
        assert f"Answer number {n}." in markdown(run)
        pis.update(p.pid for p in kernel.pis())
        if n in (20, cells - 1):  # after warm-up, and at the end
            [pi] = kernel.pis()
            samples.append((rss_mb(kernel_process), rss_mb(pi)))
    assert len(pis) == 1
    (kernel_warm, pi_warm), (kernel_end, pi_end) = samples
    print(f"RSS MB kernel {kernel_warm:.0f} -> {kernel_end:.0f}, Pi {pi_warm:.0f} -> {pi_end:.0f}")
    assert kernel_end - kernel_warm < 30
    assert pi_end - pi_warm < 100


def test_restarting_the_kernel_during_a_run_stops_its_pi(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Fresh kernel, fresh Pi."))
    old_pi = kernel.wait_for_pi()
    kernel.client.execute("%%pi\nTalk slowly.")  # not waited for: the restart comes first
    llm.wait_for_requests(1)
    kernel.restart()
    _, alive = psutil.wait_procs([old_pi], timeout=10)
    assert not alive
    assert kernel.execute("%load_ext pi_magics").status == "ok"
    after = kernel.execute("%%pi\nAnyone?", timeout=DRILL_TIMEOUT)
    assert "Fresh kernel, fresh Pi." in markdown(after)
    assert len(kernel.pis()) == 1
