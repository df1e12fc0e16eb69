"""A run's tools are the running cell's: the kernel gives them to Pi's extension just before
its prompt (so Pi need not ask at the run's start), and a run the kernel did not start asks
the kernel then, never taking an earlier cell's choice.

Real Pi, the scripted LLM, and a stand-in for the notebook's tools (what the cell allows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from pi_kernel.kernel_tools.catalog import (
    HISTORY,
    PYTHON,
    TOOL_NAMES,
    KernelToolCall,
    ToolReply,
    Verdict,
)
from pi_kernel.rpc import PiInstall
from pi_kernel.rpc.usage import UsageTally
from pi_kernel.session import PiSession
from tests.support import scripted_llm as script
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, offered

pytestmark = pytest.mark.anyio

LATER = """
export default function (pi) {
  // A run the kernel did not start: another extension's, some time after its command.
  pi.registerCommand("pi-test-later", {
    description: "start a run of this extension's own in a moment",
    handler: async () => {
      setTimeout(() => pi.sendUserMessage("Started by another extension."), 300);
    },
  });
}
"""


class CellTools:
    """What the running cell allows: ``tools``, changed by the test as cells come and go."""

    def __init__(self, tools: Sequence[str]) -> None:
        self.tools = tuple(tools)

    def offered(self) -> Sequence[str]:
        return self.tools

    def asked(self) -> Sequence[str]:
        return ()

    def budgeted(self) -> bool:
        return False

    def budget_stop(self, run_usage: UsageTally) -> str | None:
        return None

    async def approve(self, call: KernelToolCall) -> Verdict:
        return Verdict(True)

    async def call(self, call: KernelToolCall) -> ToolReply:
        return ToolReply("not run here")


def kernel_tools(request: dict[str, object]) -> list[str]:
    """The kernel tools among those Pi offered the model in ``request``."""
    return [name for name in offered(request) if name in TOOL_NAMES]


def session_with(tools: CellTools, install: PiInstall, pi_env: PiEnv, *args: str) -> PiSession:
    return PiSession(
        pi_path=str(install.path),
        args=("--no-session", *args),
        cwd=str(pi_env.cwd),
        env=pi_env.env,
        tools=tools,
    )


@pytest.mark.contract
async def test_a_run_takes_the_cells_tools_from_the_kernel_before_its_prompt(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    tools = CellTools([PYTHON])
    llm.enqueue(script.text("First."), script.text("Second."))
    async with session_with(tools, pi_install, pi_env) as session:
        await session.run_turn("First cell.", lambda event: None, cell="first")
        process = session.pi.current
        assert process is not None
        assert process.channel is not None
        # The extension could not ask now: what the second run offers came with its prompt.
        process.channel.path.unlink()
        tools.tools = (HISTORY,)
        # The first cell run again: Pi's session tree is moved back first (a command of the
        # extension's own, between the offer and the prompt).
        await session.run_turn("First cell, again.", lambda event: None, cell="first")
        served = process.channel.stats()
    assert kernel_tools(llm.requests[0]) == [PYTHON]
    assert kernel_tools(llm.requests[1]) == [HISTORY]
    assert served.offers == 2


@pytest.mark.contract
async def test_a_prompt_that_starts_no_run_takes_its_offer_back(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path
):
    later = tmp_path / "later.js"
    later.write_text(LATER)
    tools = CellTools([PYTHON])
    llm.enqueue(script.text("Done later."))
    async with session_with(tools, pi_install, pi_env, "-e", str(later)) as session:
        result = await session.run_turn("/pi-test-later", lambda event: None)
        assert result.outcome.handled_without_run
        tools.tools = ()  # the cell is over: the notebook offers nothing between cells
        await anyio.to_thread.run_sync(llm.wait_for_requests, 1)
    assert kernel_tools(llm.requests[0]) == []
