"""PiSession against the real Pi: one process per notebook, restarts, settings per turn."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import psutil
import pytest

from pi_kernel.errors import PiChoiceError, PiNoModels
from pi_kernel.rpc import PiExited, PiInstall, PiNotFound
from pi_kernel.rpc.protocol import MessageUpdate
from pi_kernel.session import PiSession
from tests.support import scripted_llm as script
from tests.support.pi_env import PiEnv, isolated_env
from tests.support.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.anyio


def session_for(install: PiInstall, pi_env: PiEnv, *args: str) -> PiSession:
    return PiSession(
        pi_path=str(install.path),
        args=args or ("--no-session",),
        cwd=str(pi_env.cwd),
        env=pi_env.env,
    )


@pytest.fixture
async def session(pi_install: PiInstall, pi_env: PiEnv) -> AsyncIterator[PiSession]:
    async with session_for(pi_install, pi_env) as session:
        yield session


def user_texts(request: dict) -> list[str]:
    texts = []
    for message in request["messages"]:
        if message["role"] == "user":
            content = message["content"]
            texts.append(content if isinstance(content, str) else content[0]["text"])
    return texts


@pytest.mark.contract
async def test_two_turns_share_one_pi_and_one_conversation(session: PiSession, llm: ScriptedLLM):
    llm.enqueue(script.text("First answer."), script.text("Second answer."))
    await session.prewarm()
    pid = (await session.client()).pid
    first = await session.run_turn("Remember 42.", lambda event: None)
    second = await session.run_turn("What did I say?", lambda event: None)
    assert first.outcome.final_text == "First answer."
    assert second.outcome.final_text == "Second answer."
    assert user_texts(llm.requests[1]) == ["Remember 42.", "What did I say?"]
    assert (await session.client()).pid == pid


async def test_a_new_session_forgets_the_conversation(session: PiSession, llm: ScriptedLLM):
    llm.enqueue(script.text("One."), script.text("Two."))
    await session.run_turn("Remember 42.", lambda event: None)
    await session.run_turn("Fresh start", lambda event: None, new=True)
    assert user_texts(llm.requests[1]) == ["Fresh start"]


@pytest.mark.contract
async def test_a_dead_pi_fails_its_turn_and_the_next_turn_restarts_it(
    session: PiSession, llm: ScriptedLLM
):
    llm.enqueue(script.text("word " * 300, pieces=300, delay=0.05), script.text("Back."))
    old_pid = (await session.client()).pid

    def kill_on_first_delta(event: object) -> None:
        if isinstance(event, MessageUpdate) and psutil.pid_exists(old_pid):
            os.killpg(old_pid, signal.SIGKILL)

    with pytest.raises(PiExited):
        await session.run_turn("Talk", kill_on_first_delta)
    result = await session.run_turn("Again", lambda event: None)
    assert result.outcome.final_text == "Back."
    assert (await session.client()).pid != old_pid
    assert not psutil.pid_exists(old_pid)


@pytest.mark.contract
async def test_a_cell_model_and_level_apply_to_that_turn_only(session: PiSession, llm: ScriptedLLM):
    llm.enqueue(script.text("Deep thought."), script.text("Plain again."))
    result = await session.run_turn(
        "Think", lambda event: None, model="scripted/deep", thinking="xhigh"
    )
    await session.run_turn("Plain", lambda event: None)
    assert result.model == "scripted/deep"
    assert result.thinking_level == "xhigh"
    assert llm.requests[0]["model"] == "deep"
    assert llm.requests[0]["reasoning_effort"] == "xhigh"
    assert llm.requests[1]["model"] == "plain"
    assert "reasoning_effort" not in llm.requests[1]


async def test_bad_model_and_level_are_refused_before_anything_is_sent(
    session: PiSession, llm: ScriptedLLM
):
    with pytest.raises(PiChoiceError, match="scripted/deep, scripted/plain, scripted/reasoner"):
        await session.run_turn("x", lambda event: None, model="scripted/nope")
    with pytest.raises(PiChoiceError, match="provider/model-id"):
        await session.run_turn("x", lambda event: None, model="nope")
    with pytest.raises(PiChoiceError, match=r"Available: off$"):
        await session.run_turn("x", lambda event: None, thinking="high")
    assert llm.requests == []
    llm.enqueue(script.text("Fine."))
    result = await session.run_turn("ok", lambda event: None)
    assert result.outcome.final_text == "Fine."
    assert (await session.state()).model.ref == "scripted/plain"


@pytest.mark.contract
async def test_restart_replaces_the_process(session: PiSession):
    old = (await session.client()).pid
    new = (await session.restart()).pid
    assert new != old
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE


async def test_a_missing_pi_is_reported_at_every_try_and_nothing_is_left(
    pi_env: PiEnv, tmp_path: Path
):
    async with PiSession(pi_path=str(tmp_path / "no-pi"), env=pi_env.env) as session:
        await session.prewarm()
        assert session.last_error is not None
        with pytest.raises(PiNotFound):
            await session.run_turn("hi", lambda event: None)
        assert not session.running


async def test_no_credentials_is_its_own_clear_error(pi_install: PiInstall, tmp_path: Path):
    empty = isolated_env(tmp_path, tmp_path / "empty-agent")
    async with session_for(pi_install, empty) as session:
        with pytest.raises(PiNoModels) as caught:
            await session.run_turn("hi", lambda event: None)
    assert "/login" in (caught.value.hint or "")


async def test_closing_while_pi_is_still_starting_stops_it(pi_install: PiInstall, pi_env: PiEnv):
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tasks, session_for(pi_install, pi_env) as session:
            tasks.start_soon(session.prewarm)
            await anyio.wait_all_tasks_blocked()  # the pre-warm awaits Pi's first answer
            assert not session.running
    assert not session.running
