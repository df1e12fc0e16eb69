"""Pi's terminal commands typed as a prompt in the Pi kernel: done with Pi's RPC commands, or
answered with the notebook's way; never sent to the model as a billed prompt.  The real Pi
(issue 18)."""

from __future__ import annotations

import json

import pytest

from tests.support import scripted_llm as script
from tests.support.kernels import CellRun, KernelHarness, running_kernel, short_failure
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM


def test_new_starts_a_fresh_conversation_without_asking_the_model(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("First answer."))
    assert kernel.execute("Remember the number 7.").status == "ok"
    before = kernel.execute("%pi status").text()
    fresh = kernel.execute("/new")
    assert "Started a fresh Pi conversation." in fresh.text()
    after = kernel.execute("%pi status").text()
    session = next(line for line in before.splitlines() if line.startswith("Session:"))
    assert session not in after
    assert len(llm.requests) == 1


def test_model_and_thinking_set_the_notebook_s_choice(kernel: KernelHarness, llm: ScriptedLLM):
    switched = kernel.execute("/model scripted/reasoner")
    assert "This notebook's model is now scripted/reasoner" in switched.text()
    levels = kernel.execute("/thinking")
    assert "scripted/reasoner offers off, minimal, low, medium, high" in levels.text()
    assert "thinking level is now high" in kernel.execute("/thinking high").text()
    status = kernel.execute("%pi status").text()
    assert "Model:     scripted/reasoner" in status
    assert "Thinking:  high" in status
    assert "not a model reference" in short_failure(kernel.execute("/model nonsense"))
    assert not llm.requests


def test_compact_uses_pi_s_compaction_and_its_refusal_is_one_line(
    pi_env: PiEnv, kernels_prefix: str, llm: ScriptedLLM
):
    assert "Nothing to compact" in short_failure(_pi_kernel_run(pi_env, "/compact", llm))
    # Pi keeps the newest 20k tokens unsummarized; a tiny budget makes a short talk compactable.
    settings_path = pi_env.agent_dir / "settings.json"
    settings = json.loads(settings_path.read_text())
    settings["compaction"] = {"keepRecentTokens": 10}
    settings_path.write_text(json.dumps(settings))
    llm.enqueue(script.text("A long answer " * 20), script.text("One more answer."))
    llm.enqueue(script.text("Summary: the user asked for long answers."))
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        assert kernel.execute("Tell me something long.").status == "ok"
        assert kernel.execute("And once more.").status == "ok"
        compacted = kernel.execute("/compact keep it short")
    assert compacted.status == "ok", compacted.error_text
    assert "Compacted the conversation: " in compacted.text()
    assert "keep it short" in json.dumps(llm.requests[-1])  # the instructions reached it


def _pi_kernel_run(pi_env: PiEnv, code: str, llm: ScriptedLLM) -> CellRun:
    llm.enqueue(script.text("Hello."))
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        assert kernel.execute("Hello.").status == "ok"
        return kernel.execute(code)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("/quit", "here %pi restart starts a new Pi"),
        ("/session", "here: %pi status"),
        ("/login anthropic", "a command of Pi's terminal program"),
        ("/share", "a command of Pi's terminal program"),
    ],
)
def test_terminal_only_commands_say_what_to_do_and_send_nothing(
    shared_pi_kernel: KernelHarness, shared_llm: ScriptedLLM, prompt: str, expected: str
):
    run = shared_pi_kernel.execute(prompt)  # each answers here and changes nothing
    assert run.status == "ok"
    assert expected in run.text()
    assert "Nothing was sent to the model." in run.text()
    assert not shared_llm.requests


def test_a_prompt_that_only_starts_with_a_slash_still_goes_to_pi(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("That is the hosts file."))
    run = kernel.execute("/etc/hosts: what is this file?")
    assert "That is the hosts file." in run.text("text/markdown")
    assert len(llm.requests) == 1
