"""The Pi kernel, installed as a kernelspec and run by Jupyter: cells are Pi prompts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pi_kernel.kernel.routing import PYTHON_MARKER, completion_target, route_cell
from pi_magics.subcommands import NAMES
from tests.support import scripted_llm as script
from tests.support.kernels import (
    INTERRUPT_BOUND,
    KernelHarness,
    pi_kernel_cli,
    run_notebook,
    running_kernel,
)
from tests.support.pi_env import PiEnv
from tests.support.pis import DATA
from tests.support.scripted_llm import ScriptedLLM


def test_install_is_listed_harmless_twice_and_uninstall_removes_it(tmp_path: Path, pi_env: PiEnv):
    prefix = tmp_path / "prefix"
    env = {**pi_env.env, "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    jupyter = Path(sys.executable).with_name("jupyter")

    def listed() -> dict[str, str]:
        """Kernel name -> the directory Jupyter takes it from (the wheel's own copy in this
        environment may be listed too, but the prefix on JUPYTER_PATH comes first)."""
        out = subprocess.run(
            [str(jupyter), "kernelspec", "list", "--json"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        specs = json.loads(out)["kernelspecs"]
        return {name: spec["resource_dir"] for name, spec in specs.items()}

    for _ in range(2):
        result = pi_kernel_cli("install", "--prefix", str(prefix))
        assert result.returncode == 0, result.stderr
    assert listed()["pi"] == str(prefix / "share" / "jupyter" / "kernels" / "pi")
    spec = json.loads((prefix / "share/jupyter/kernels/pi/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["display_name"] == "Pi"
    assert (prefix / "share/jupyter/kernels/pi/logo-64x64.png").is_file()
    removed = pi_kernel_cli("uninstall", "--prefix", str(prefix))
    assert removed.returncode == 0, removed.stderr
    assert listed().get("pi") != str(prefix / "share" / "jupyter" / "kernels" / "pi")
    assert not (prefix / "share" / "jupyter" / "kernels" / "pi").exists()
    again = pi_kernel_cli("uninstall", "--prefix", str(prefix))
    assert again.returncode == 1
    assert "No kernelspec named 'pi'" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("cell", "routed"),
    [
        ("What is 2+2?", "%%pi\nWhat is 2+2?"),
        ("\n/compact\n", "%%pi\n/compact\n"),
        (f"{PYTHON_MARKER}\nx = 1\n", "x = 1\n"),
        ("%%python\nprint(1)\n", "%%python\nprint(1)\n"),
        ("%pi status", "%pi status"),
        ("!echo hi", "!echo hi"),
        ("", ""),
    ],
)
def test_cells_are_prompts_unless_they_start_with_a_magic_or_a_shell_line(cell: str, routed: str):
    assert "".join(route_cell(cell.splitlines(keepends=True))) == routed


def test_kernel_info_names_pi_kernel_and_markdown(kernel: KernelHarness):
    reply = kernel.reply_to(kernel.client.kernel_info(), timeout=10)["content"]
    assert reply["implementation"] == "pi-kernel"
    assert reply["language_info"]["name"] == "markdown"
    assert "%%py" in reply["banner"]
    assert f"%pi help    what %pi does: {', '.join(NAMES)}\n" in reply["banner"]


def test_the_kernel_offers_no_debugger_yet_its_python_imports_debugpy(kernel: KernelHarness):
    # The kernelspec says "debugger": false; ipykernel would import debugpy all the same.
    reply = kernel.reply_to(kernel.client.kernel_info(), timeout=10)["content"]
    assert "debugger" not in reply.get("supported_features", [])
    imported = kernel.execute(f"{PYTHON_MARKER}\nimport debugpy\nprint(debugpy.__name__)")
    assert imported.status == "ok", imported.error_text
    assert imported.text().strip() == "debugpy"


def test_the_kernel_collects_garbage_once_started(kernel: KernelHarness):
    # Its start-up runs with Python's cycle collector off (faster imports); never after.
    assert kernel.evaluate("__import__('gc').isenabled()") is True


@pytest.mark.contract
def test_a_prompt_a_python_cell_a_magic_and_a_shell_line(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("Forty-two."))
    answered = kernel.execute("What is the answer?")
    assert answered.status == "ok", answered.error_text
    assert "Forty-two." in answered.text("text/markdown")
    computed = kernel.execute(f"{PYTHON_MARKER}\nvalue = 6 * 7\nvalue")
    assert computed.status == "ok", computed.error_text
    assert computed.text() == "42"
    status = kernel.execute("%pi status")
    assert "Model:     scripted/plain" in status.text()
    shell = kernel.execute("!echo from-the-shell")
    assert "from-the-shell" in shell.text()


def test_a_notebook_in_the_pi_kernel_runs_headless(
    kernels_prefix: str, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("Hello from Pi."))
    llm.enqueue(*script.tool_then_answer(command="echo tool-ran", answer="The tool ran."))
    cells = [
        "Say hello.",
        "Run echo.",
        f"{PYTHON_MARKER}\nprint(sum(range(10)))",
        "%pi status",
    ]
    saved = run_notebook(cells, env=pi_env.env, path=pi_env.cwd / "pi.ipynb", kernel_name="pi")
    assert saved.metadata["language_info"]["name"] == "markdown"

    def text(cell: int) -> str:
        parts = []
        for output in saved.cells[cell].outputs:
            assert output.output_type != "error", output
            parts.append(output.get("text", ""))
            parts.extend(output.get("data", {}).values())
        return "\n".join(str(part) for part in parts)

    assert "Hello from Pi." in text(0)
    assert "echo tool-ran" in text(1)
    assert "The tool ran." in text(1)
    assert text(2).strip() == "45"
    assert "Model:     scripted/plain" in text(3)


@pytest.mark.parametrize(
    ("code", "kind", "prefix"),
    [
        ("/rev", "slash", "/rev"),
        ("  /", "slash", "/"),
        ("/review the code", "prompt", "code"),
        ("Explain /rev", "prompt", "/rev"),
        ("%pi st", "subcommand", "st"),
        ("%pi ", "subcommand", ""),
        ("%%pi --model scr", "model", "scr"),
        ("%%pi --model scripted/p\nHello", "model", "scripted/p"),
        ("%%pi --new\nHel", "prompt", "Hel"),
        (f"{PYTHON_MARKER}\nimpo", None, None),
        ("%time x", None, None),
        ("!ls", None, None),
    ],
)
def test_what_is_completed_where(code: str, kind: str | None, prefix: str | None):
    cursor = code.index("\n") if "\n" in code and kind == "model" else len(code)
    target = completion_target(code, cursor)
    if kind is None:
        assert target is None
    else:
        assert target is not None
        assert (target.kind, target.prefix) == (kind, prefix)
        assert code[target.start : cursor] == prefix


def complete(kernel: KernelHarness, code: str) -> dict[str, object]:
    reply: dict[str, object] = kernel.reply_to(kernel.client.complete(code, len(code)), timeout=30)[
        "content"
    ]
    return reply


@pytest.mark.contract
def test_completion_offers_pi_s_commands_subcommands_and_models(kernels_prefix: str, pi_env: PiEnv):
    prompts = pi_env.agent_dir / "prompts"
    prompts.mkdir()
    (prompts / "review.md").write_text("---\ndescription: Review the code\n---\nReview $@\n")
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        slash = complete(kernel, "/rev")
        assert slash["matches"] == ["/review"]
        assert slash["cursor_start"] == 0
        assert sorted(complete(kernel, "%pi re")["matches"]) == [
            "record",
            "replay",
            "restart",
            "resume",
        ]
        assert complete(kernel, "%pi ")["matches"] == list(NAMES)  # the table, in its order
        models = complete(kernel, "%%pi --model scripted/")
        assert models["matches"] == ["scripted/deep", "scripted/plain", "scripted/reasoner"]
        assert complete(kernel, "Tell me about pyth")["matches"] == []  # prose: nothing
        python = complete(kernel, f"{PYTHON_MARKER}\nimport o")
        assert "os" in python["matches"]  # IPython's own completion


@pytest.mark.contract
def test_inspecting_a_model_id_shows_what_pi_reports(kernel: KernelHarness):
    code = "Use scripted/deep for this"
    reply = kernel.reply_to(kernel.client.inspect(code, code.index("deep")), timeout=30)["content"]
    assert reply["found"]
    text = reply["data"]["text/plain"]
    assert text.startswith("scripted/deep — Scripted deep")
    assert "Context window: 128,000 tokens" in text
    assert "Reasoning:      yes" in text
    missing = kernel.reply_to(kernel.client.inspect("Use scripted/nope", 8), timeout=30)
    assert not missing["content"]["found"]


EXTENSIONS = DATA / "extensions"


def give_pi_extension(kernel: KernelHarness, name: str) -> None:
    """Restart the kernel's Pi with a test extension (a magic cell, as a user would)."""
    args = ["--extension", str(EXTENSIONS / name)]
    configured = kernel.execute(f"%config PiMagics.pi_args = {args!r}")
    assert configured.status == "ok", configured.error_text


def test_a_dialog_is_answered_through_stdin(kernel: KernelHarness):
    give_pi_extension(kernel, "confirm_dialog.ts")
    run = kernel.execute("/confirm-test", answer=lambda prompt: "y")
    assert run.status == "ok", run.error_text
    assert run.input_prompts == ["yes or no (empty cancels): "]
    assert "Pi asks: Proceed?\nThe test asks for a yes or no." in run.text()
    assert "confirmed=true" in run.text()


def test_a_dialog_in_the_middle_of_a_turn_is_asked_again_on_a_wrong_answer(
    kernel: KernelHarness, llm: ScriptedLLM
):
    give_pi_extension(kernel, "tool_gate.ts")
    llm.enqueue(*script.tool_then_answer(command="echo gated-ran", answer="It ran."))
    answers = iter(["maybe", "1"])
    run = kernel.execute("Run the gated command.", answer=lambda prompt: next(answers))
    assert run.status == "ok", run.error_text
    assert len(run.input_prompts) == 2
    assert "Pi asks: Run echo gated-ran?\n  1. Allow\n  2. Block" in run.text()
    assert "'maybe' is not one of the options" in run.text()
    assert "gated-ran" in json.dumps(llm.requests[1]["messages"][-1])  # the tool really ran
    assert "It ran." in run.text("text/markdown")


def test_without_stdin_a_dialog_is_cancelled_with_a_notice_and_the_turn_completes(
    kernel: KernelHarness, llm: ScriptedLLM
):
    give_pi_extension(kernel, "tool_gate.ts")
    llm.enqueue(*script.tool_then_answer(command="echo never-ran", answer="It was blocked."))
    run = kernel.execute("Run the gated command.")  # allow_stdin is off, as in nbclient
    assert run.status == "ok", run.error_text
    assert not run.input_prompts
    shown = run.text()
    assert "it was cancelled: this frontend does not take input (stdin is off)" in shown
    tool_result = json.dumps(llm.requests[1]["messages"][-1])
    assert "Blocked (answer: undefined)" in tool_result
    assert "never-ran" not in tool_result.replace("echo never-ran", "")
    assert "It was blocked." in run.text("text/markdown")


def test_an_empty_answer_cancels_the_dialog(kernel: KernelHarness):
    give_pi_extension(kernel, "confirm_dialog.ts")
    run = kernel.execute("/confirm-test", answer=lambda prompt: "")
    assert run.status == "ok", run.error_text
    assert "(confirm); it was cancelled." in run.text()
    assert "confirmed=false" in run.text()


@pytest.mark.timing
def test_an_interrupt_while_pi_asks_cancels_the_dialog_and_the_next_cell_works(
    kernel: KernelHarness, llm: ScriptedLLM
):
    give_pi_extension(kernel, "tool_gate.ts")
    llm.enqueue(script.tool_calls(("bash", {"command": "echo never-ran"})))
    llm.enqueue(script.text("Still here."))
    pressed: list[float] = []

    def press_stop(prompt: str) -> str:
        pressed.append(time.monotonic())
        kernel.interrupt()
        time.sleep(0.2)  # the answer comes too late: input() was interrupted
        return "1"

    run = kernel.execute("Run the gated command.", answer=press_stop)
    # Pi heard the cancel at once, so its abort did not wait on the open dialog.
    assert time.monotonic() - pressed[0] < INTERRUPT_BOUND
    assert "interrupted" in run.text().lower()
    again = kernel.execute("Are you there?")
    assert again.status == "ok", again.error_text
    assert "Still here." in again.text("text/markdown")
    assert len(llm.requests) == 2  # the aborted turn asked the LLM nothing more


@pytest.mark.timing
def test_interrupt_ends_the_cell_quickly_and_restart_and_shutdown_stop_pi(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Back again."))
    run, seconds = kernel.execute_interrupted("Talk slowly.")
    assert seconds < INTERRUPT_BOUND
    assert "interrupted" in run.text().lower()
    assert "Back again." in kernel.execute("Still there?").text("text/markdown")
    before = kernel.wait_for_pi()
    kernel.restart()
    _, alive = psutil.wait_procs([before], timeout=10)
    assert not alive, "a restart left the old Pi running"
    after = kernel.wait_for_pi()  # the new kernel starts its own
    assert after.pid != before.pid
    kernel.shutdown()
    _, alive = psutil.wait_procs([after], timeout=10)
    assert not alive, "shutdown left Pi running"


def test_a_killed_kernel_takes_its_pi_with_it(kernel: KernelHarness):
    pi = kernel.wait_for_pi()
    kernel.restart(now=True)  # SIGKILL: the kernel cannot stop Pi itself
    _, alive = psutil.wait_procs([pi], timeout=10)
    assert not alive, "Pi outlived its killed kernel"
