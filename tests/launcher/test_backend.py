"""Choosing where the main command's Pi gets its models, against the real Pi."""

from __future__ import annotations

from pathlib import Path

import pytest

from pi_kernel import variables
from pi_kernel.launcher.backend import choose_backend
from pi_kernel.rpc import PiInstall
from tests.support.new_user import new_user_env
from tests.support.pi_env import PiEnv, write_agent_dir
from tests.support.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.anyio


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def assert_unchanged(directory: Path, before: dict[str, bytes]) -> None:
    """Every file that was there is as it was.  (Pi itself adds its empty stores, such as
    auth.json, on its first start in a dir, as it does whenever the user runs it.)"""
    after = snapshot(directory)
    assert {name: after.get(name) for name in before} == before


async def test_a_configured_agent_dir_with_models_is_used_as_it_is(
    pi_install: PiInstall, pi_env: PiEnv, tmp_path: Path
):
    before = snapshot(pi_env.agent_dir)
    backend = await choose_backend(pi_install, tmp_path / "own", pi_env.env)
    assert backend.kind == "configured"
    assert backend.env == pi_env.env
    assert backend.models == ("scripted/deep", "scripted/plain", "scripted/reasoner")
    assert_unchanged(pi_env.agent_dir, before)
    assert not (tmp_path / "own").exists()


async def test_a_configured_agent_dir_without_models_falls_back_to_the_local_model(
    pi_install: PiInstall, tmp_path: Path
):
    empty = tmp_path / "empty-agent"
    empty.mkdir()
    env = {**new_user_env(tmp_path), variables.AGENT_DIR: str(empty)}
    backend = await choose_backend(pi_install, tmp_path / "own", env)
    assert backend.kind == "local"
    assert f"Pi offers no models with {variables.AGENT_DIR}={empty}" in backend.description
    assert backend.env[variables.AGENT_DIR] == str(tmp_path / "own")
    assert backend.env["PI_OFFLINE"] == "1"


async def test_the_users_own_pi_setup_is_used_and_left_untouched(
    pi_install: PiInstall, llm: ScriptedLLM, tmp_path: Path
):
    env = new_user_env(tmp_path)
    user_agent_dir = write_agent_dir(Path(env["HOME"]) / ".pi" / "agent", llm.base_url)
    before = snapshot(user_agent_dir)
    backend = await choose_backend(pi_install, tmp_path / "own", env)
    assert backend.kind == "user"
    assert variables.AGENT_DIR not in backend.env
    assert "scripted/plain" in backend.models
    assert_unchanged(user_agent_dir, before)


async def test_a_provider_key_in_the_environment_is_used_without_creating_dot_pi(
    pi_install: PiInstall, tmp_path: Path
):
    env = {**new_user_env(tmp_path), "OPENAI_API_KEY": "sk-not-a-real-key"}
    backend = await choose_backend(pi_install, tmp_path / "own", env)
    assert backend.kind == "environment"
    assert backend.env[variables.AGENT_DIR] == str(tmp_path / "own")
    assert any(ref.startswith("openai/") for ref in backend.models)
    assert not (Path(env["HOME"]) / ".pi").exists()


async def test_no_setup_and_no_key_means_the_local_model(pi_install: PiInstall, tmp_path: Path):
    env = new_user_env(tmp_path)
    own = tmp_path / "own"
    own.mkdir()
    (own / "models.json").write_text('{"providers": {}}')  # a previous run's, now stale
    backend = await choose_backend(pi_install, own, env)
    assert backend.kind == "local"
    assert "no Pi setup (~/.pi) and no provider key" in backend.description
    assert not (own / "models.json").exists()
    assert not (Path(env["HOME"]) / ".pi").exists()
