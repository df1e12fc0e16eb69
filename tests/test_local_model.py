"""The embedded demo model: its real server, started and stopped, and its config for Pi."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import psutil
import pytest

from pi_kernel import local_model
from tests.new_user import broken_weights

REQUEST_TIMEOUT = 60


def streamed_text(base_url: str, body: dict[str, object]) -> str:
    """POST a streaming chat request the way Pi does and join the text deltas."""
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    pieces = []
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data: {"):
                delta = json.loads(line.removeprefix("data: "))["choices"][0]["delta"]
                pieces.append(delta.get("content") or "")
    return "".join(pieces)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_server_answers_pis_text_parts_and_stops_with_its_context(tmp_path: Path):
    log = tmp_path / "logs" / "local-model.log"
    with local_model.serving(log) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        text = streamed_text(
            server.base_url,
            {
                "model": local_model.MODEL_ID,
                "stream": True,
                "max_tokens": 16,
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
                ],
            },
        )
    assert text.strip()
    assert gone(server.pid)
    assert log.is_file()


def test_a_server_that_cannot_load_its_weights_fails_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend(str(broken_weights(tmp_path)))
    log = tmp_path / "local-model.log"
    with (
        pytest.raises(local_model.LocalModelError) as failure,
        local_model.serving(log),
    ):
        pytest.fail("the server should not have started")
    message = failure.value.message
    assert message.startswith("The local model server exited while starting (code 1): ")
    assert f"(log: {log})" in message
    assert "\n" not in message
    assert "real provider" in (failure.value.hint or "")


def test_the_agent_config_registers_one_local_model_within_its_context(tmp_path: Path):
    local_model.write_agent_config(tmp_path, "http://127.0.0.1:1234/v1")
    models = json.loads((tmp_path / "models.json").read_text())
    settings = json.loads((tmp_path / "settings.json").read_text())
    (provider,) = models["providers"].values()
    (model,) = provider["models"]
    assert provider["baseUrl"] == "http://127.0.0.1:1234/v1"
    assert f"{settings['defaultProvider']}/{settings['defaultModel']}" == local_model.MODEL_REF
    assert model["contextWindow"] == local_model.CONTEXT_WINDOW
    reserve = settings["compaction"]["reserveTokens"]
    assert model["maxTokens"] <= reserve < model["contextWindow"]
    local_model.clear_agent_config(tmp_path)
    assert list(tmp_path.iterdir()) == []
