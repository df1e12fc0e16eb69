"""Pi's kernel tools in the Pi kernel: a prompt cell's Pi runs Python in the same namespace
as the notebook's ``%%py`` cells, and reads what they did."""

from __future__ import annotations

import pytest

from pi_kernel.kernel_tools.catalog import HISTORY, PYTHON, VARIABLES
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness
from tests.support.scripted_llm import ScriptedLLM, call, tool_result


@pytest.mark.contract
def test_a_prompt_cells_pi_works_in_the_py_cells_namespace(
    pi_kernel: KernelHarness, llm: ScriptedLLM
):
    kernel = pi_kernel
    assert kernel.execute("%%py\nprices = [3.5, 4.0, 2.25]").status == "ok"
    llm.enqueue(
        script.tool_calls((VARIABLES, {}), (HISTORY, {})),
        *call(PYTHON, "The mean is 3.25.", code="mean = sum(prices) / len(prices)\nmean"),
    )
    run = kernel.execute("What is the mean price? Keep it in `mean`.")
    assert run.status == "ok", run.outputs
    looked = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "prices: list, length 3" in str(looked[0]["content"])
    assert "prices = [3.5, 4.0, 2.25]" in str(looked[1]["content"])
    assert "Result: 3.25" in tool_result(llm.requests[2])
    assert "mean = sum(prices)" in run.text("text/plain")
    assert kernel.execute("%%py\nassert mean == 3.25").status == "ok"
