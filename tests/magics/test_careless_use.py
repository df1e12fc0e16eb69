"""Careless input and unlucky timing get a few clear lines and a working next cell, never a
traceback wall or a silent wedge.  Real kernels (python3 with the magics, and the Pi kernel),
the real Pi (issue 18: careless and hostile use)."""

from __future__ import annotations

import json
import random
import shlex
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from pi_kernel import variables
from pi_kernel.rpc.launch import PiInstall
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel, short_failure
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM


def works(kernel: KernelHarness, llm: ScriptedLLM) -> None:
    """The next cell asks the model and shows its answer."""
    llm.enqueue(script.text("Still working."))
    asked = len(llm.requests)
    run = kernel.execute("%%pi\nAre you there?")
    assert run.status == "ok", run.error_text
    assert "Still working." in run.text("text/markdown")
    assert len(llm.requests) == asked + 1


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("%config PiMagics.pi_args = ['--bogus-flag']", "exited during start-up"),
        ("%config PiMagics.pi_path = '/bin/false'", "exited during start-up"),
    ],
)
def test_a_pi_that_cannot_start_is_a_few_lines_in_both_kernels(
    pi_env: PiEnv, llm: ScriptedLLM, setting: str, expected: str
):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")
        kernel.execute(setting)
        assert expected in short_failure(kernel.execute("%%pi\nHello"))
        kernel.execute("%config PiMagics.pi_path = None\n%config PiMagics.pi_args = []")
        works(kernel, llm)


def test_a_pi_under_an_old_node_is_a_few_lines_naming_the_cause(
    kernel: KernelHarness, tmp_path: Path, pi_install: PiInstall
):
    old_node = tmp_path / "pi-on-node-20"
    script = pi_install.argv[-1]  # Pi's cli.js, run by the machine's own (older) node
    old_node.write_text(f'#!/bin/sh\nexec node {shlex.quote(script)} "$@"\n')
    old_node.chmod(0o755)
    kernel.execute(f"%config PiMagics.pi_path = {str(old_node)!r}")
    assert "it needs Node >= 22" in short_failure(kernel.execute("%%pi\nHello"))


def test_a_pi_path_in_the_environment_that_cannot_start_is_a_few_lines(pi_env: PiEnv):
    env = {**pi_env.env, variables.PI_PATH: "/bin/false"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")
        assert "exited during start-up" in short_failure(kernel.execute("%%pi\nHello"))
        assert "exited during start-up" in short_failure(kernel.execute("%pi models"))


def test_interrupting_a_cell_while_pi_starts_is_one_line(
    pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path, pi_install: PiInstall
):
    slow = tmp_path / "slow-pi"
    real = " ".join(shlex.quote(part) for part in pi_install.argv)
    slow.write_text(f'#!/bin/sh\nsleep 4\nexec {real} "$@"\n')
    slow.chmod(0o755)
    env = {**pi_env.env, variables.PI_PATH: str(slow)}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")

        def interrupt_while_waiting(message: dict[str, Any]) -> None:
            if message["msg_type"] == "execute_input":  # the cell is now waiting for Pi
                time.sleep(1.0)
                kernel.interrupt()

        run = kernel.execute("%%pi\nHello", on_message=interrupt_while_waiting)
        assert "Interrupted while waiting for Pi" in short_failure(run)
        works(kernel, llm)


@pytest.mark.timing
def test_a_pi_that_never_answers_holds_nothing_once_the_settings_change(
    pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path, pi_install: PiInstall
):
    silent = tmp_path / "silent-pi"
    silent.write_text("#!/bin/sh\nexec sleep 300\n")  # starts, reads nothing, says nothing
    silent.chmod(0o755)
    env = {**pi_env.env, variables.PI_PATH: str(silent)}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        kernel.execute("%load_ext pi_magics")  # the pre-warm now waits on the silent Pi

        def interrupt_while_waiting(message: dict[str, Any]) -> None:
            if message["msg_type"] == "execute_input":
                time.sleep(1.0)
                kernel.interrupt()

        run = kernel.execute("%%pi\nHello", on_message=interrupt_while_waiting)
        assert "Interrupted while waiting for Pi" in short_failure(run)
        changed = kernel.execute(f"%config PiMagics.pi_path = {str(pi_install.path)!r}")
        assert changed.status == "ok"
        assert changed.seconds < 5  # it used to wait out the silent Pi's 30 s start-up
        works(kernel, llm)
        assert not [
            p for p in psutil.Process(kernel.pid).children(recursive=True) if "sleep" in p.name()
        ]


@pytest.mark.parametrize(
    ("setup", "cell", "expected"),
    [
        ("", '%%pi --model "scripted/plain\nHello', "No closing quotation"),
        ("", "%%pi --out print\nHello", "would hide Python's built-in print"),
        ("", "%%pi --out class\nHello", "--out needs a Python variable name, not 'class'"),
        ("x = 1", "%%pi --interpolate\nPad {x:>30000000}", "not {name:>30000000}"),
        ("bad = '\\ud800'", "%%pi --interpolate\nSay {bad}", "('\\ud800' at position 4)"),
        ("", "%config PiMagics.discovery_timeout = float('nan')", "seconds above 0, not nan"),
        ("", "%config PiMagics.heartbeat = 0", "PiMagics.heartbeat is seconds above 0, not 0.0"),
    ],
)
def test_careless_input_is_one_short_message_and_asks_no_model(
    shared_kernel: KernelHarness, shared_llm: ScriptedLLM, setup: str, cell: str, expected: str
):
    kernel = shared_kernel  # each case is refused before it changes anything
    assert kernel.execute(setup).status == "ok"
    run = kernel.execute(cell)
    if cell.startswith("%config"):  # IPython's %config reports a refused value on stderr
        assert expected in run.error_text
        assert "Traceback" not in run.error_text
    else:
        assert expected in short_failure(run)
    assert not shared_llm.requests


def test_a_huge_interpolated_value_is_refused_before_anything_is_sent(
    kernel: KernelHarness, llm: ScriptedLLM
):
    kernel.execute("x = 'y'")
    short_failure(kernel.execute("%%pi --interpolate\n{x:>30000000}"))
    assert not llm.requests
    works(kernel, llm)


def test_two_turns_at_once_run_one_and_refuse_the_other_then_the_notebook_works(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 40, pieces=40, delay=0.02))
    both = kernel.execute(
        "import threading\n"
        "refused = []\n"
        "def turn(prompt):\n"
        "    try:\n"
        "        get_ipython().run_cell_magic('pi', '', prompt)\n"
        "    except Exception as exc:\n"
        "        refused.append(str(exc))\n"
        "thread = threading.Thread(target=turn, args=('Second',))\n"
        "thread.start()\n"
        "turn('First')\n"
        "thread.join()\n"
        "print(refused)"
    )
    assert both.status == "ok", both.error_text
    assert both.text().count("A Pi turn is already running in this notebook") == 1
    assert len(llm.requests) == 1
    works(kernel, llm)
    works(kernel, llm)


FUZZ_WORDS = (
    "--model",
    "--thinking",
    "--out",
    "--new",
    "--quiet",
    "--interpolate",
    "--bogus",
    "-x",
    "--replace",
    "--live-on-miss",
    "off",
    "scripted/plain",
    "scripted/nope",
    "/",
    "high",
    "ultra",
    "print",
    "class",
    "_ok",
    '"',
    "'",
    '"quoted words"',
    "ünïcödé",
    "\u202e",
    "🙂",
    "{x}",
    "{{",
    "}",
    "\\",
    "~/x.jsonl",
    "a" * 5000,
    "9" * 400,
    "nan",
    "-1",
)
SUBCOMMAND_WORDS = (
    "status",
    "models",
    "new",
    "abort",
    "record",
    "replay",
    "resume",
    "export",
    "help",
    "picker",
    "frobnicate",
    "",
)


def fuzz_cells(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    cells = []
    for _ in range(count):
        words = " ".join(rng.choice(FUZZ_WORDS) for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.5:
            cells.append(f"%%pi {words}\nHello {{x}} {rng.choice(FUZZ_WORDS)}")
        else:
            cells.append(f"%pi {rng.choice(SUBCOMMAND_WORDS)} {words}")
    return cells


def test_fuzzed_pi_lines_never_show_a_traceback_wall_and_the_next_cell_works(
    kernel: KernelHarness, llm: ScriptedLLM
):
    kernel.execute("x = 'value'")
    for cell in fuzz_cells(seed=18, count=60):
        run = kernel.execute(cell)
        if run.status == "error":
            short_failure(run)
        else:
            assert "Traceback" not in run.text(), (cell, run.text())
    works(kernel, llm)


def test_a_huge_prompt_is_not_saved_again_in_full(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(script.text("Read it."))
    huge = "word " * 200_000  # 1 MB
    run = kernel.execute(f"%%pi\n{huge}")
    assert run.status == "ok", run.error_text
    assert len(llm.requests) == 1  # Pi got all of it
    saved = len(json.dumps(run.outputs))
    assert saved < 100_000  # the transcript keeps the prompt's start and the count
    assert "Read it." in run.text("text/markdown")


@pytest.mark.timing
def test_pi_status_on_a_pi_that_stopped_answering_says_so_within_two_seconds(
    kernel: KernelHarness, llm: ScriptedLLM
):
    works(kernel, llm)  # Pi is up and has answered
    [pi] = kernel.pis()
    pi.suspend()  # SIGSTOP: Pi is there, and answers nothing
    try:
        run = kernel.execute("%pi status")
    finally:
        pi.resume()
    assert run.status == "ok", run.error_text
    assert f"running, pid {pi.pid}, and not answering" in run.text()
    assert "%pi restart starts a new one" in run.text()
    assert "Cwd:" in run.text()  # and the rest of what the kernel knows
    assert run.seconds < 2  # the bound (Pi's own command timeout is 10 s)
    works(kernel, llm)
