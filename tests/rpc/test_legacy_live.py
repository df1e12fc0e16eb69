"""The same runs against the legacy Pi 0.73.1: no agent_settled, snapshot-heavy updates."""

from __future__ import annotations

import pytest

from pi_kernel.rpc import PiCommandError, PiInstall
from pi_kernel.rpc.protocol import MessageUpdate, TextDelta, ToolExecutionEnd
from tests.support import scripted_llm as script
from tests.support.clients import client_for, collect
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM

pytestmark = [pytest.mark.anyio, pytest.mark.legacy]


async def test_legacy_text_run_settles_without_agent_settled(
    legacy_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("Hello from the past.", pieces=5))
    async with client_for(legacy_install, pi_env) as client:
        assert not client.settles_with_event
        events, outcome = await collect(client, "Say hello")
        state = await client.get_state()
    streamed = "".join(
        event.assistant_message_event.delta
        for event in events
        if isinstance(event, MessageUpdate) and isinstance(event.assistant_message_event, TextDelta)
    )
    assert streamed == "Hello from the past."
    assert outcome.status == "completed"
    assert outcome.final_text == "Hello from the past."
    assert not state.is_streaming
    assert not [event for event in events if event.type == "agent_settled"]


async def test_legacy_tool_run_completes_in_one_run(
    legacy_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.tool_then_answer(command="echo hello", answer="It said hello."))
    async with client_for(legacy_install, pi_env) as client:
        events, outcome = await collect(client, "Run echo")
    end = next(event for event in events if isinstance(event, ToolExecutionEnd))
    assert end.result is not None
    assert "hello" in end.result.text
    assert outcome.status == "completed"
    assert outcome.final_text == "It said hello."
    assert len(llm.requests) == 2


async def test_legacy_thinking_levels_are_computed_like_pi_does(
    legacy_install: PiInstall, pi_env: PiEnv
):
    levels = {}
    async with client_for(legacy_install, pi_env) as client:
        for model_id in ("plain", "reasoner", "deep"):
            await client.set_model("scripted", model_id)
            levels[model_id] = await client.get_available_thinking_levels()
    assert levels == {
        "plain": ["off"],
        "reasoner": ["off", "minimal", "low", "medium", "high"],
        "deep": ["off", "minimal", "low", "medium", "high", "xhigh"],
    }


async def test_legacy_unknown_command_error_without_id_reaches_its_waiter(
    legacy_install: PiInstall, pi_env: PiEnv
):
    async with client_for(legacy_install, pi_env) as client:
        with pytest.raises(PiCommandError, match="Unknown command: get_available_thinking_levels"):
            await client.request("get_available_thinking_levels", timeout=5)
