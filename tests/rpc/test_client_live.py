"""The client against the real Pi 0.87.1 and the scripted LLM."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import anyio
import pytest

from pi_kernel.rpc import PiClient, PiExited, PiInstall, Run, open_client
from pi_kernel.rpc.protocol import (
    AgentEnd,
    MessageUpdate,
    TextDelta,
    ToolExecutionEnd,
    ToolExecutionStart,
    ToolExecutionUpdate,
)
from tests import llm_server as script
from tests.conftest import PiEnv
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.anyio

PLAIN = ("--provider", "scripted", "--model", "plain", "--no-session")


def client_for(install: PiInstall, pi_env: PiEnv, *args: str) -> Any:
    return open_client(install, args=args or PLAIN, cwd=str(pi_env.cwd), env=pi_env.env)


async def collect(client: PiClient, prompt: str) -> tuple[list[Any], Any]:
    events = []
    async with client.prompt(prompt) as run:
        async for event in run:
            events.append(event)
    return events, run.outcome


async def test_models_are_exactly_those_of_models_json(pi_install: PiInstall, pi_env: PiEnv):
    async with client_for(pi_install, pi_env) as client:
        models = await client.get_available_models()
        state = await client.get_state()
    assert sorted(model.ref for model in models) == [
        "scripted/deep",
        "scripted/plain",
        "scripted/reasoner",
    ]
    assert state.model is not None
    assert state.model.ref == "scripted/plain"


async def test_thinking_levels_follow_the_model(pi_install: PiInstall, pi_env: PiEnv):
    levels = {}
    async with client_for(pi_install, pi_env) as client:
        for model_id in ("plain", "reasoner", "deep"):
            await client.set_model("scripted", model_id)
            levels[model_id] = await client.get_available_thinking_levels()
    assert levels["plain"] == ["off"]
    assert levels["reasoner"] == ["off", "minimal", "low", "medium", "high"]
    assert levels["deep"] == ["off", "minimal", "low", "medium", "high", "xhigh"]


async def test_text_prompt_streams_deltas_and_settles(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("Hello from the scripted model.", pieces=6))
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Say hello")
    deltas = [
        event.assistant_message_event.delta
        for event in events
        if isinstance(event, MessageUpdate) and isinstance(event.assistant_message_event, TextDelta)
    ]
    assert len(deltas) >= 2
    assert "".join(deltas) == "Hello from the scripted model."
    assert outcome.status == "completed"
    assert outcome.final_text == "Hello from the scripted model."
    assert events[-1].type == "agent_settled"


async def test_tool_prompt_runs_the_tool_and_answers_in_one_run(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.tool_then_answer(command="echo hello", answer="The tool said hello."))
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Run echo")
    kinds = [type(event) for event in events]
    assert ToolExecutionStart in kinds
    assert ToolExecutionUpdate in kinds
    end = next(event for event in events if isinstance(event, ToolExecutionEnd))
    assert end.tool_name == "bash"
    assert not end.is_error
    assert end.result is not None
    assert "hello" in end.result.text
    assert outcome.status == "completed"
    assert outcome.final_text == "The tool said hello."


async def test_http_500_then_success_ends_after_the_retry_not_the_first_agent_end(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.error_then_answer(status=500, answer="Recovered."))
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Try")
    assert sum(isinstance(event, AgentEnd) for event in events) == 2
    assert outcome.status == "completed"
    assert outcome.final_text == "Recovered."
    assert len(llm.requests) == 2


async def test_abort_during_a_slow_stream_ends_the_run_quickly(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Still here."))
    async with client_for(pi_install, pi_env) as client:
        async with client.prompt("Talk slowly") as run:
            async for event in run:
                if isinstance(event, MessageUpdate) and isinstance(
                    event.assistant_message_event, TextDelta
                ):
                    break
            started = time.monotonic()
            await client.abort()
            outcome = await run.wait()
            elapsed = time.monotonic() - started
        assert outcome.status == "aborted"
        assert elapsed < 1.0
        _, after = await collect(client, "Are you there?")
    assert after.status == "completed"
    assert after.final_text == "Still here."


async def kill_pi_during(run: Run, client: PiClient) -> float:
    """SIGKILL Pi at the first event of ``run``; return when the run failed."""
    async for _ in run:
        os.killpg(client.pid, signal.SIGKILL)
        killed = time.monotonic()
        with anyio.fail_after(2):
            async for _ in run:
                pass
        return killed
    raise AssertionError("the run ended before Pi could be killed")


async def test_pi_killed_mid_run_fails_the_run_and_every_waiter(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    async with client_for(pi_install, pi_env) as client:
        async with client.prompt("Talk slowly") as run:
            with pytest.raises(PiExited) as caught:
                await kill_pi_during(run, client)
        assert caught.value.returncode == -signal.SIGKILL
        with pytest.raises(PiExited):
            await client.get_state()
