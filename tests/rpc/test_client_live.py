"""The client against each real Pi (``contract``) and the scripted LLM."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from pi_kernel.rpc import (
    ClientNotice,
    PiClient,
    PiCommandError,
    PiExited,
    PiInstall,
    Run,
    open_client,
)
from pi_kernel.rpc.client import SETTLED_SINCE
from pi_kernel.rpc.protocol import (
    AgentEnd,
    AssistantMessage,
    AutoRetryStart,
    ExtensionUIRequest,
    MessageEnd,
    MessageUpdate,
    TextContent,
    TextDelta,
    ToolCall,
    ToolExecutionEnd,
    ToolExecutionStart,
    ToolExecutionUpdate,
    extension_ui_response,
)
from tests.support import scripted_llm as script
from tests.support.clients import PLAIN, client_for, collect
from tests.support.pi_env import PiEnv
from tests.support.pis import REPO
from tests.support.scripted_llm import ScriptedLLM

pytestmark = [pytest.mark.anyio, pytest.mark.contract]

EXTENSIONS = REPO / "tests" / "data" / "extensions"


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
    # Pi >= 0.80.4 says when it is done; before that the client's idle check decided.
    assert events[-1].type == ("agent_settled" if client.settles_with_event else "agent_end")


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
    # Pi >= 0.80 ends the failed attempt's agent run and starts another; 0.73 retries inside
    # its one agent run.
    assert sum(isinstance(event, AgentEnd) for event in events) == (
        2 if client.settles_with_event else 1
    )
    assert outcome.status == "completed"
    assert outcome.final_text == "Recovered."
    assert len(llm.requests) == 2


@pytest.mark.timing
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


async def test_multi_stage_run_keeps_text_and_tools_in_order(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.multi_stage())
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Work in stages")
    order = []
    for event in events:
        if isinstance(event, MessageEnd) and isinstance(event.message, AssistantMessage):
            order.extend(
                "text" if isinstance(block, TextContent) else "tool"
                for block in event.message.content
                if isinstance(block, TextContent | ToolCall)
            )
    assert order == ["text", "tool", "text", "tool", "text"]
    assert outcome.status == "completed"
    assert len(llm.requests) == 3


async def test_parallel_tool_calls_both_finish_in_one_run(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.parallel_tools_then_answer(commands=("echo alpha", "echo beta")))
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Run both")
    ends = [event for event in events if isinstance(event, ToolExecutionEnd)]
    assert sorted(end.result.text.strip() for end in ends if end.result) == ["alpha", "beta"]
    assert outcome.status == "completed"


async def test_a_failing_tool_is_reported_as_an_error_and_the_run_goes_on(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.failing_tool_then_answer(command="echo failing >&2; exit 3"))
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Fail once")
    end = next(event for event in events if isinstance(event, ToolExecutionEnd))
    assert end.is_error
    assert end.result is not None
    assert "code 3" in end.result.text
    assert outcome.status == "completed"


async def test_a_model_error_ends_the_run_as_failed_with_pis_message(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.http_error(status=400, message="the model refuses"))
    async with client_for(pi_install, pi_env) as client:
        _, outcome = await collect(client, "Hello?")
        state = await client.get_state()
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "the model refuses" in outcome.error
    assert not state.is_streaming


async def test_a_dropped_connection_is_retried_to_success(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(*script.dropped_then_answer())
    async with client_for(pi_install, pi_env) as client:
        events, outcome = await collect(client, "Go")
    assert any(isinstance(event, AutoRetryStart) for event in events)
    assert outcome.status == "completed"


async def test_unicode_separators_and_a_5_mb_answer_arrive_intact(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    # Pi 0.73 repeats the whole message in every update (quadratic stdout): 5 MB would be
    # terabytes, and Node aborts long before.  It gets an answer of 50 KB instead.
    legacy = not pi_install.at_least(*SETTLED_SINCE)
    size = 50 * 1024 if legacy else 5 * 1024 * 1024
    separated = "first\u2028second\u2029third"
    llm.enqueue(script.text(separated, pieces=3))
    llm.enqueue(script.long_text(9_000 if legacy else 900_000))
    async with client_for(pi_install, pi_env) as client:
        _, first = await collect(client, "Separators")
        events, second = await collect(client, "A lot")
        # The huge answer overflows the context: a fresh session keeps Pi from compacting.
        assert not (await client.new_session()).cancelled
        _, third = await collect_after(llm, client, script.text("Still fine."), "After")
    assert first.final_text == separated
    assert len(second.final_text) > size
    streamed = "".join(
        event.assistant_message_event.delta
        for event in events
        if isinstance(event, MessageUpdate) and isinstance(event.assistant_message_event, TextDelta)
    )
    assert streamed == second.final_text
    assert third.final_text == "Still fine."
    assert not client.protocol_errors


async def collect_after(
    llm: ScriptedLLM, client: PiClient, reply: script.Reply, prompt: str
) -> tuple[list[Any], Any]:
    llm.enqueue(reply)
    return await collect(client, prompt)


async def test_unknown_commands_fail_cleanly(pi_install: PiInstall, pi_env: PiEnv):
    async with client_for(pi_install, pi_env) as client:
        with pytest.raises(PiCommandError, match="Unknown command"):
            await client.request("no_such_command")
        assert (await client.get_state()).model is not None


async def test_a_rejected_model_is_pis_own_error(pi_install: PiInstall, pi_env: PiEnv):
    async with client_for(pi_install, pi_env) as client:
        with pytest.raises(PiCommandError, match="Model not found: scripted/nope"):
            await client.set_model("scripted", "nope")
        state = await client.get_state()
    assert state.model is not None
    assert state.model.ref == "scripted/plain"


async def test_an_extension_dialog_is_cancelled_with_a_notice_and_nothing_hangs(
    pi_install: PiInstall, pi_env: PiEnv
):
    args = (*PLAIN, "--extension", str(EXTENSIONS / "confirm_dialog.ts"))
    async with client_for(pi_install, pi_env, *args) as client:
        commands = await client.get_commands()
        assert "confirm-test" in [entry.name for entry in commands]
        with anyio.fail_after(15):
            events, outcome = await collect(client, "/confirm-test")
    assert outcome.status == "completed"
    assert outcome.handled_without_run
    dialog = next(event for event in events if isinstance(event, ExtensionUIRequest))
    assert dialog.method == "confirm"
    notices = [event.message for event in events if isinstance(event, ClientNotice)]
    assert any("Proceed?" in notice and "cancelled" in notice for notice in notices)


async def test_what_became_of_a_prompt_is_pi_s_word_on_pi_1_and_asked_for_before(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("Hi."))
    args = (*PLAIN, "--extension", str(EXTENSIONS / "confirm_dialog.ts"))
    async with client_for(pi_install, pi_env, *args) as client:
        before = client.commands_sent["get_state"]
        _, ran = await collect(client, "Say hi")
        with anyio.fail_after(15):
            _, handled = await collect(client, "/confirm-test")
        asked = client.commands_sent["get_state"] - before
    assert (ran.status, ran.handled_without_run, ran.final_text) == ("completed", False, "Hi.")
    assert (handled.status, handled.handled_without_run) == ("completed", True)
    if pi_install.at_least(1):
        # The prompt's response says started or handled: no get_state round trip at all.
        assert asked == 0
    else:
        assert asked >= 2  # an idle check after each accepted prompt


async def test_an_abort_during_a_retry_wait_is_aborted_on_pi_1_not_failed(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    # The run's last message is the failed attempt (stopReason "error"): only Pi's own
    # agent_settled.aborted (Pi >= 1) tells that the user stopped it.
    settings = pi_env.agent_dir / "settings.json"
    settings.write_text(json.dumps({"retry": {"baseDelayMs": 5000}}), encoding="utf-8")
    llm.enqueue(*script.error_then_answer(status=500, answer="unused"))
    waited = False
    async with client_for(pi_install, pi_env) as client, client.prompt("Try") as run:
        async for event in run:
            if isinstance(event, AutoRetryStart):
                waited = True
                await client.abort()
    if not waited:
        pytest.skip(f"Pi {pi_install.version} retries without announcing a wait to abort")
    assert run.outcome is not None
    assert run.outcome.status == ("aborted" if pi_install.at_least(1) else "failed")
    assert len(llm.requests) == 1


async def test_a_custom_ui_handler_answers_the_dialog(pi_install: PiInstall, pi_env: PiEnv):
    async def say_yes(request: ExtensionUIRequest) -> dict[str, Any]:
        return extension_ui_response(request.id, confirmed=True)

    args = (*PLAIN, "--extension", str(EXTENSIONS / "confirm_dialog.ts"))
    async with (
        open_client(
            pi_install, args=args, cwd=str(pi_env.cwd), env=pi_env.env, ui_handler=say_yes
        ) as client,
        client.events() as events,
    ):
        _, outcome = await collect(client, "/confirm-test")
        with anyio.fail_after(10):
            async for event in events:
                if isinstance(event, ExtensionUIRequest) and event.method == "notify":
                    break
    assert outcome.status == "completed"
    assert event.message == "confirmed=true"


async def test_leaving_a_run_early_aborts_it_and_the_next_run_is_clean(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    llm.enqueue(script.text("Fresh answer."))
    async with client_for(pi_install, pi_env) as client:
        assert await left_after(client, 0.5) == "aborted"
        _, after = await collect(client, "Again")
    assert after.final_text == "Fresh answer."


async def left_after(client: PiClient, seconds: float) -> str:
    """Start a run and leave it after ``seconds``: how it ended."""
    with anyio.move_on_after(seconds):
        async with client.prompt("Talk slowly") as run:
            async for _ in run:
                pass
    assert run.outcome is not None
    return run.outcome.status


SLOW_START = """
export default function (pi) {
  pi.on("before_agent_start", async () => { await new Promise((r) => setTimeout(r, 1000)); });
}
"""
"""An extension whose hook holds every run's start (Pi's preflight) for 1 s."""


async def test_leaving_a_run_before_pi_started_it_still_stops_it(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path
):
    # An abort that reaches Pi before the run started stops nothing: the run then streamed
    # into the next one (seen under load, when Pi's start took longer than the caller waited).
    extension = tmp_path / "slow_start.js"
    extension.write_text(SLOW_START)
    llm.enqueue(script.text("word " * 400, pieces=400, delay=0.05))
    async with client_for(pi_install, pi_env, *PLAIN, "-e", str(extension)) as client:
        assert await left_after(client, 0.3) == "aborted"
        # Past the hook's second: a run the abort missed would be streaming by now.  The
        # aborted one may have been stopped before its model request: its reply goes.
        await anyio.sleep(1.5)
        llm.reset()
        llm.enqueue(script.text("Fresh answer."))
        events, after = await collect(client, "Again")
    assert after.final_text == "Fresh answer."
    assert "word" not in json.dumps([event.model_dump(mode="json") for event in events])


async def test_requests_in_flight_fail_at_once_when_pi_dies(pi_install: PiInstall, pi_env: PiEnv):
    failures: list[BaseException] = []
    both_failed = anyio.Event()

    async def wait_for_slow_bash(client: PiClient) -> None:
        try:
            await client.request("bash", command="sleep 30", timeout=60)
        except PiExited as exc:
            failures.append(exc)
            if len(failures) == 2:
                both_failed.set()

    async with client_for(pi_install, pi_env) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(wait_for_slow_bash, client)
        tasks.start_soon(wait_for_slow_bash, client)
        await anyio.wait_all_tasks_blocked()
        os.killpg(client.pid, signal.SIGKILL)
        with anyio.fail_after(2):
            await both_failed.wait()
    assert len(failures) == 2


async def test_a_follow_up_queued_during_a_run_belongs_to_the_same_run(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("first " * 40, pieces=40, delay=0.02))
    llm.enqueue(script.text("Second answer."))
    async with client_for(pi_install, pi_env) as client:
        queued = False
        async with client.prompt("First") as run:
            async for event in run:
                if isinstance(event, MessageUpdate) and not queued:
                    queued = True
                    await client.follow_up("And then?")
        outcome = run.outcome
    assert outcome is not None
    answers = [
        message.text for message in outcome.messages if isinstance(message, AssistantMessage)
    ]
    assert answers == ["first " * 40, "Second answer."]
    assert outcome.final_text == "Second answer."
    assert len(llm.requests) == 2


async def test_a_second_prompt_while_busy_is_rejected_by_pi(
    pi_install: PiInstall, pi_env: PiEnv, llm: ScriptedLLM
):
    llm.enqueue(script.text("busy " * 100, pieces=100, delay=0.02))
    async with client_for(pi_install, pi_env) as client, client.prompt("First") as first:
        async for event in first:
            if isinstance(event, MessageUpdate):
                break
        with pytest.raises(PiCommandError, match="already processing"):
            async with client.prompt("Second") as second:
                await second.wait()
        assert (await first.wait()).status == "completed"
