"""A model named as unable to call tools (the main command's demo model) has each answer
say so: nothing it invents about a file passes for what a tool found."""

from __future__ import annotations

from pi_kernel import variables
from pi_kernel.transcript import NoticePart, transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import running_kernel
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM


def test_an_answer_of_a_model_that_calls_no_tools_says_so(pi_env: PiEnv, llm: ScriptedLLM):
    env = {**pi_env.env, variables.TOOLLESS_MODELS: "local/other, scripted/plain"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        llm.enqueue(script.text("The file has 35 columns."), script.text("Thought."))
        llm.enqueue(script.text("It has 12 rows."))
        plain = kernel.execute("%%pi\nHow many rows does data.csv have?")
        reasoner = kernel.execute("%%pi --model scripted/reasoner\nThink.")
        # Pi runs now: the turn learns its model as it starts, and still says so.
        warm = kernel.execute("%%pi\nAnd now?")
    for run in (plain, warm):
        [record] = transcripts_in(run.outputs)
        notices = [part.text for part in record.blocks if isinstance(part, NoticePart)]
        assert any("scripted/plain cannot call tools: it read no file" in text for text in notices)
        assert "cannot call tools" in run.text()
    assert "cannot call tools" not in reasoner.text()  # a model not named says nothing
