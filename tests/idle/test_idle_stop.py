"""An idle Pi stops, and comes back with its session: real kernels, the real Pi, and what the
scripted model received."""

from __future__ import annotations

import time

import psutil

from pi_kernel.transcript import transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel
from tests.support.pi_env import PiEnv, add_cached_model
from tests.support.scripted_llm import ScriptedLLM, user_texts

ASLEEP_WITHIN = 15.0
"""Seconds for an idle Pi (idle_stop 1 s) to be gone: the watch, Pi's own stop."""


def wait_until_no_pi(kernel: KernelHarness, gone: list[psutil.Process]) -> None:
    deadline = time.monotonic() + ASLEEP_WITHIN
    while time.monotonic() < deadline:
        if not kernel.pis() and not any(pi.is_running() for pi in gone):
            return
        time.sleep(0.1)
    raise AssertionError(f"a Pi still runs {ASLEEP_WITHIN} s after idle_stop: {kernel.pis()}")


def ask(kernel: KernelHarness, llm: ScriptedLLM, prompt: str) -> str:
    llm.enqueue(script.text(f"Answer to {prompt}."))
    run = kernel.execute(f"%%pi\n{prompt}")
    assert run.status == "ok", run.outputs
    return run.text()


def test_an_idle_pi_stops_and_the_next_cell_continues_its_conversation(
    kernel: KernelHarness, llm: ScriptedLLM
):
    assert kernel.execute("%config PiMagics.idle_stop = 1").status == "ok"
    ask(kernel, llm, "Remember kiwi")
    first = kernel.wait_for_pi()
    wait_until_no_pi(kernel, [first])
    status = kernel.execute("%pi status").text()
    assert "Process:   asleep since " in status
    assert "Idle stop: after 1 s without a turn" in status
    assert not kernel.pis()  # asking for the status did not wake it

    said = ask(kernel, llm, "Which word?")
    assert "started again on the same session" in said
    assert user_texts(llm.requests[-1]) == ["Remember kiwi", "Which word?"]
    assert "Answer to Remember kiwi." in str(llm.requests[-1]["messages"])
    [second] = kernel.pis()
    assert second.pid != first.pid
    assert "Process:   running" in kernel.execute("%pi status").text()


def test_an_asleep_pi_warms_no_cache(kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv):
    # A model whose prompt cache Pi 1.6 refreshes every second while it is idle.
    add_cached_model(pi_env.agent_dir)
    llm.enqueue(*(script.text("Fine.") for _ in range(30)))
    args = ["--provider", "scripted", "--model", "cached"]
    assert kernel.execute(f"%config PiMagics.pi_args = {args!r}").status == "ok"
    assert kernel.execute("%%pi\nhello").status == "ok"
    llm.wait_for_requests(3)  # the answer, then refreshes: Pi warms while awake
    assert kernel.execute("%config PiMagics.idle_stop = 1").status == "ok"
    wait_until_no_pi(kernel, [])
    asleep = len(llm.requests)
    time.sleep(3)
    assert len(llm.requests) == asleep
    # What the Pi put to sleep spent warming is still counted: the next cell says so.
    woken = kernel.execute("%%pi\nhello again")
    assert woken.status == "ok", woken.outputs
    [record] = transcripts_in(woken.outputs)
    assert record.cache_warming is not None
    assert 1 <= record.cache_warming.refreshes <= asleep - 1


def test_a_session_pi_chose_itself_is_never_put_to_sleep(kernel: KernelHarness, llm: ScriptedLLM):
    # In memory only: stopping it would lose the conversation.
    assert kernel.execute("%config PiMagics.pi_args = ['--no-session']").status == "ok"
    assert kernel.execute("%config PiMagics.idle_stop = 0.5").status == "ok"
    ask(kernel, llm, "Remember kiwi")
    pi = kernel.wait_for_pi()
    time.sleep(2)
    assert pi.is_running()


def test_the_pi_kernel_sleeps_as_a_deployment_says(
    pi_env: PiEnv, llm: ScriptedLLM, kernels_prefix: str
):
    env = {**pi_env.env, "PI_KERNEL_IDLE_STOP": "1"}
    with running_kernel(env=env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        llm.enqueue(script.text("Noted."), script.text("Kiwi."))
        assert kernel.execute("Remember kiwi").status == "ok"
        wait_until_no_pi(kernel, [kernel.wait_for_pi()])
        run = kernel.execute("Which word?")
        assert run.status == "ok", run.outputs
        assert "started again on the same session" in run.text()
        assert user_texts(llm.requests[-1]) == ["Remember kiwi", "Which word?"]


def test_the_cells_keep_their_places_across_a_sleep(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("%config PiMagics.idle_stop = 1").status == "ok"
    for cell, prompt in (("a", "A one"), ("b", "B one")):
        llm.enqueue(script.text(f"Answer to {prompt}."))
        assert kernel.execute(f"%%pi\n{prompt}", cell_id=cell).status == "ok"
    wait_until_no_pi(kernel, [kernel.wait_for_pi()])
    llm.enqueue(script.text("Again."))
    assert kernel.execute("%%pi\nA two", cell_id="a").status == "ok"
    assert user_texts(llm.requests[-1]) == ["A two"]
