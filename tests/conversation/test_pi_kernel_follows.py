"""The Pi kernel's prompt cells follow the notebook as ``%%pi`` cells do; its ``%%py`` cells
are no part of the conversation."""

from __future__ import annotations

from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness
from tests.support.scripted_llm import ScriptedLLM, user_texts


def ask(kernel: KernelHarness, llm: ScriptedLLM, cell: str, prompt: str) -> list[str]:
    llm.enqueue(script.text(f"Answer to {prompt}."))
    run = kernel.execute(prompt, cell_id=cell)
    assert run.status == "ok", run.outputs
    return user_texts(llm.requests[-1])


def test_prompt_cells_rerun_where_they_were_first_asked(pi_kernel: KernelHarness, llm: ScriptedLLM):
    assert ask(pi_kernel, llm, "a", "A one") == ["A one"]
    assert pi_kernel.execute("%%py\nx = 1", cell_id="p").status == "ok"
    assert ask(pi_kernel, llm, "b", "B one") == ["A one", "B one"]
    assert ask(pi_kernel, llm, "a", "A two") == ["A two"]
    assert ask(pi_kernel, llm, "b", "B two") == ["A two", "B two"]
