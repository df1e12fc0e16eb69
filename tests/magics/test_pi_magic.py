"""``%%pi`` and ``%pi`` in a real IPython kernel, against the real Pi and the scripted LLM."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from pi_kernel.rpc import PiInstall
from pi_kernel.transcript import ToolPart, transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import INTERRUPT_BOUND, KernelHarness, running_kernel
from tests.support.pi_env import PiEnv, add_cached_model, isolated_env
from tests.support.scripted_llm import ScriptedLLM

KILL_BOUND = 2.0


@pytest.mark.contract
def test_the_answer_streams_into_the_cell_as_markdown(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("The **answer** is 42.", pieces=5))
    run = kernel.execute("%%pi\nWhat is the answer?")
    assert run.status == "ok", run.outputs
    assert "The **answer** is 42." in run.text("text/markdown")
    assert "42" in run.text("text/plain")


@pytest.mark.timing
def test_a_long_quiet_tool_run_shows_its_time_at_each_heartbeat(
    kernel: KernelHarness, llm: ScriptedLLM
):
    """Output is what idle culling counts as activity; a busy kernel alone is not."""
    assert kernel.execute("%config PiMagics.heartbeat = 0.5").status == "ok"
    llm.enqueue(*script.tool_then_answer(command="sleep 3", answer="Slept."))
    run = kernel.execute("%%pi\nSleep for a while.")
    assert run.status == "ok", run.outputs
    updates = [
        message["content"]["data"]["text/plain"]
        for message in run.messages
        if message["msg_type"] == "update_display_data"
    ]
    times = {found.group(1) for text in updates if (found := re.search(r"running… (\d+ s)", text))}
    assert {"1 s", "2 s"} <= times, updates


def test_a_thinking_answer_shows_a_collapsed_thinking_block(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.thinking("Let me think about it.", "Done thinking."))
    run = kernel.execute("%%pi --model scripted/reasoner --thinking high\nThink")
    assert run.status == "ok", run.outputs
    html = run.text("text/html")
    assert "<details" in html
    assert "<details open" not in html
    assert "Let me think about it." in html
    assert "Done thinking." in run.text("text/markdown")
    assert llm.requests[0]["reasoning_effort"] == "high"


@pytest.mark.contract
def test_a_tool_run_shows_the_tool_and_the_answer_and_no_empty_step(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*script.tool_then_answer(command="echo hello", answer="It printed hello."))
    run = kernel.execute("%%pi\nRun echo")
    assert run.status == "ok", run.outputs
    assert "echo hello" in run.text("text/html")
    assert "It printed hello." in run.text("text/markdown")
    markdown_outputs = [
        out["data"]["text/markdown"]
        for out in run.outputs
        if "text/markdown" in out.get("data", {})
    ]
    assert all(text.strip() for text in markdown_outputs)


def test_calls_inside_a_codemode_script_are_drawn_inside_its_block_with_their_times(
    kernel: KernelHarness, llm: ScriptedLLM
):
    code = (
        'const a = await tools.bash({command: "echo one"});\n'
        'const b = await tools.bash({command: "echo two"});\n'
        "return a.output + b.output;"
    )
    llm.enqueue(script.tool_calls(("codemode", {"code": code})), script.text("Both ran."))
    configured = kernel.execute("%config PiMagics.pi_args = ['--tools', '+codemode']")
    assert configured.status == "ok", configured.error_text
    run = kernel.execute("%%pi\nRun both")
    assert run.status == "ok", run.error_text
    [transcript] = transcripts_in(run.outputs)
    [codemode] = [part for part in transcript.blocks if isinstance(part, ToolPart)]
    assert codemode.name == "codemode"
    assert [(call.name, call.arguments, call.output) for call in codemode.calls] == [
        ("bash", {"command": "echo one"}, "one\n"),
        ("bash", {"command": "echo two"}, "two\n"),
    ]
    # Pi >= 1 measures each tool: the script and each call inside it.
    assert codemode.duration_ms is not None
    assert all(call.duration_ms is not None for call in codemode.calls)
    html = run.text("text/html")
    # One tool block, the script's, with both calls inside it and a time on each.
    tool_blocks = [
        out for out in run.outputs if "<b>codemode</b>" in out.get("data", {}).get("text/html", "")
    ]
    assert len(tool_blocks) == 1
    inner = tool_blocks[0]["data"]["text/html"]
    assert inner.count("<b>bash</b>") == 2
    assert "<b>bash</b>" not in html.replace(inner, "")
    assert re.search(r"ok in \d+ ms", inner)


def test_a_transcript_records_the_level_each_message_really_used(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*script.tool_then_answer(command="echo x", answer="Done."))
    run = kernel.execute("%%pi --model scripted/reasoner --thinking high\nThink and run")
    assert run.status == "ok", run.error_text
    [transcript] = transcripts_in(run.outputs)
    assert transcript.thinking_level == "high"
    assert transcript.message_levels == ["high", "high"]  # the tool call, then the answer


def test_two_cells_share_one_pi_and_one_conversation(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("Noted."), script.text("You said 42."))
    kernel.execute("%%pi\nRemember 42.")
    run = kernel.execute("%%pi --out answer\nWhat did I say?")
    assert run.status == "ok", run.outputs
    assert [m["role"] for m in llm.requests[1]["messages"]].count("user") == 2
    assert len(kernel.pis()) == 1
    stored = kernel.execute("print(answer)")
    assert stored.text().strip() == "You said 42."


def test_new_starts_a_fresh_conversation(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("One."), script.text("Two."), script.text("Three."))
    kernel.execute("%%pi\nRemember 42.")
    kernel.execute("%%pi --new\nFresh")
    assert [m["role"] for m in llm.requests[1]["messages"]].count("user") == 1
    new = kernel.execute("%pi new")
    assert new.status == "ok", new.outputs
    kernel.execute("%%pi\nAgain fresh")
    assert [m["role"] for m in llm.requests[2]["messages"]].count("user") == 1


@pytest.mark.timing
@pytest.mark.contract
def test_interrupting_a_slow_stream_ends_the_cell_quickly_and_the_next_cell_works(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Back again."))
    run, seconds = kernel.execute_interrupted("%%pi\nTalk slowly")
    assert seconds < INTERRUPT_BOUND
    assert "interrupted" in run.text("text/plain").lower()
    after = kernel.execute("%%pi\nStill there?")
    assert after.status == "ok", after.outputs
    assert "Back again." in after.text("text/markdown")


@pytest.mark.timing
def test_a_killed_pi_ends_the_cell_with_an_error_and_the_next_cell_restarts_it(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Restarted."))
    pi = kernel.wait_for_pi()
    killed_at: list[float] = []

    def kill_on_first_text(message: dict[str, Any]) -> None:
        if not killed_at and message["msg_type"] in ("display_data", "update_display_data"):
            killed_at.append(time.monotonic())
            os.killpg(pi.pid, signal.SIGKILL)

    run = kernel.execute("%%pi\nTalk slowly", on_message=kill_on_first_text)
    assert killed_at
    assert time.monotonic() - killed_at[0] < KILL_BOUND
    assert run.status == "error"
    assert run.error is not None
    assert run.error["ename"] == "PiExited"
    assert len(run.error["traceback"]) <= 3
    assert "%pi status" in run.error_text
    after = kernel.execute("%%pi\nAre you back?")
    assert after.status == "ok", after.outputs
    assert "Restarted." in after.text("text/markdown")
    assert len(kernel.pis()) == 1
    assert "Last exit: Pi exited with code -9" in kernel.execute("%pi status").text()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--model scripted/nope", "Available: scripted/deep, scripted/plain, scripted/reasoner"),
        ("--model nope", "provider/model-id"),
        ("--thinking high", "does not support thinking level 'high'. Available: off"),
        ("--thinking", "expected one argument"),
    ],
)
def test_bad_options_are_one_clear_line_and_the_next_cell_works(
    kernel: KernelHarness, llm: ScriptedLLM, line: str, expected: str
):
    run = kernel.execute(f"%%pi {line}\nhello")
    assert run.status == "error"
    assert expected in run.error_text
    assert len(run.error_text.strip().splitlines()) <= 3
    assert llm.requests == []
    llm.enqueue(script.text("Fine."))
    assert "Fine." in kernel.execute("%%pi\nhello").text("text/markdown")


def test_a_missing_pi_names_the_path(pi_env: PiEnv, tmp_path: Path):
    env = {**pi_env.env, "PI_KERNEL_PI_PATH": str(tmp_path / "missing" / "pi")}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")
        run = kernel.execute("%%pi\nhello")
    assert run.status == "error"
    assert run.error is not None
    assert run.error["ename"] == "PiNotFound"
    assert str(tmp_path / "missing" / "pi") in "\n".join(run.error["traceback"])


@pytest.mark.live  # a python3 kernel with an empty agent dir
def test_no_credentials_says_how_to_log_in(tmp_path: Path):
    empty = isolated_env(tmp_path, tmp_path / "empty-agent")
    with running_kernel(env=empty.env, cwd=empty.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")
        run = kernel.execute("%%pi\nhello")
    assert run.status == "error"
    assert run.error is not None
    assert run.error["ename"] == "PiNoModels"
    assert "/login" in "\n".join(run.error["traceback"])


@pytest.mark.contract
def test_status_models_and_help(kernel: KernelHarness, llm: ScriptedLLM, pi_install: PiInstall):
    llm.enqueue(script.text("Hi."))
    kernel.execute("%%pi\nhello")
    status = kernel.execute("%pi status").text()
    assert f"{pi_install.package} {pi_install.version}" in status
    assert "scripted/plain" in status
    assert "Thinking:  off" in status
    assert "Last turn: completed" in status
    # Pi's own totals for the conversation (get_session_stats): the one answer so far.
    [totals] = [line for line in status.splitlines() if line.startswith("Totals:")]
    assert re.search(r"Totals:    [1-9][\d,]* in / [1-9][\d,]* out tokens", totals), totals
    models = kernel.execute("%pi models").text()
    assert "* scripted/plain" in models
    assert "  scripted/deep" in models
    assert "%%pi [options]" in kernel.execute("%pi help").text()
    unknown = kernel.execute("%pi frobnicate")
    assert unknown.status == "error"
    assert "Unknown subcommand 'frobnicate'. Usage: %pi status" in unknown.error_text


def test_idle_cache_warming_is_counted_in_status_and_the_next_cell_s_footer(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    # A model whose prompt cache lives 11 s: Pi 1.6 refreshes it every second between
    # runs, each refresh a 1-token request the user pays for.
    add_cached_model(pi_env.agent_dir)
    llm.enqueue(*(script.text("Fine.") for _ in range(60)))
    args = ["--provider", "scripted", "--model", "cached"]
    assert kernel.execute(f"%config PiMagics.pi_args = {args!r}").status == "ok"
    first = kernel.execute("%%pi\nhello")
    assert first.status == "ok", first.error_text
    [first_transcript] = transcripts_in(first.outputs)
    assert first_transcript.cache_warming is None  # nothing was warmed before it
    # The answer, then refreshes with no cell running: once the third has reached the LLM,
    # Pi has written the first two's usage to stdout, ahead of any answer to %pi status.
    llm.wait_for_requests(4)
    status = kernel.execute("%pi status").text()
    assert re.search(r"Warming:   \$\d+\.\d{4} cache warming \(\d+ refreshes\)", status), status
    assert "Context:   " in status
    second = kernel.execute("%%pi\nagain")
    assert second.status == "ok", second.error_text
    [transcript] = transcripts_in(second.outputs)
    assert transcript.cache_warming is not None
    assert transcript.cache_warming.refreshes >= 2
    assert transcript.cache_warming.cost > 0
    footer = second.text("text/plain")
    assert re.search(r"\+\$\d+\.\d{4} cache warming \(\d+ refreshes\) since the last cell", footer)
    assert all(request["max_completion_tokens"] == 1 for request in llm.requests[1:3])
    # The budget counts the warming too: what the user pays between cells is spent.
    line = kernel.execute("%pi budget").text()
    match = re.search(r"Budget: \$(\d+\.\d{4}) and", line)
    assert match, line
    turns = first_transcript.usage.cost + transcript.usage.cost
    assert float(match.group(1)) >= turns + transcript.cache_warming.cost - 0.0001


def test_interpolation_is_opt_in(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("A."), script.text("B."))
    kernel.execute("name = 'Ada'")
    kernel.execute("%%pi\nHello {name}")
    kernel.execute("%%pi --interpolate\nHello {name}")
    assert llm.requests[0]["messages"][-1]["content"][0]["text"] == "Hello {name}"
    assert llm.requests[1]["messages"][-1]["content"][0]["text"] == "Hello Ada"


def test_kernel_shutdown_leaves_no_pi(pi_env: PiEnv):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")
        pi = kernel.wait_for_pi()
    assert not psutil.pid_exists(pi.pid) or pi.status() == psutil.STATUS_ZOMBIE


def test_the_pi_path_setting_is_honoured(
    kernel: KernelHarness, llm: ScriptedLLM, pi_install: PiInstall, tmp_path: Path
):
    missing = tmp_path / "elsewhere" / "pi"
    assert kernel.execute(f"%config PiMagics.pi_path = {str(missing)!r}").status == "ok"
    broken = kernel.execute("%%pi\nhello")
    assert broken.status == "error"
    assert str(missing) in broken.error_text
    assert "%config PiMagics.pi_path" in broken.error_text  # the notebook's way to fix it
    assert not kernel.pis()
    kernel.execute(f"%config PiMagics.pi_path = {str(pi_install.path)!r}")
    llm.enqueue(script.text("Found it."))
    assert "Found it." in kernel.execute("%%pi\nhello").text("text/markdown")
    assert "(from the pi_path setting or --pi)" in kernel.execute("%pi status").text()


def test_unloading_the_extension_stops_pi(kernel: KernelHarness):
    pi = kernel.wait_for_pi()
    assert kernel.execute("%unload_ext pi_magics").status == "ok"
    _, alive = psutil.wait_procs([pi], timeout=5)
    assert not alive
    assert kernel.execute("%%pi\nhello").status == "error"  # the magic is gone too
