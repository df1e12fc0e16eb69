"""A throwaway Pi agent directory (``PI_CODING_AGENT_DIR``) wired to the scripted LLM."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "API_KEY",
    "GATED_KEY_ENV",
    "MODELS",
    "PROVIDER",
    "PiEnv",
    "add_cached_model",
    "add_gated_provider",
    "add_priced_model",
    "add_vision_model",
    "isolated_env",
    "write_agent_dir",
]

PROVIDER = "scripted"
# plain: no reasoning, levels ["off"]; reasoner: off..high; deep: off..xhigh.
MODELS = ("plain", "reasoner", "deep")

API_KEY = "scripted-test-key"
"""The scripted provider's key in ``models.json`` unless a test gives another."""

# Pi's auto-retry waits 2 s, 4 s, 8 s by default; 50 ms keeps retry tests fast.
_RETRY_BASE_DELAY_MS = 50


def _model(model_id: str, *, reasoning: bool, **extra: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": f"Scripted {model_id}",
        "reasoning": reasoning,
        "input": ["text"],
        "contextWindow": 128_000,
        "maxTokens": 8_192,
        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
        **extra,
    }


def write_agent_dir(path: Path, base_url: str, *, api_key: str = API_KEY) -> Path:
    """Write ``models.json`` (provider ``scripted``) and ``settings.json`` into ``path``.

    Returns ``path``, ready to be passed to Pi as ``PI_CODING_AGENT_DIR``.
    """
    path.mkdir(parents=True, exist_ok=True)
    models = {
        "providers": {
            PROVIDER: {
                "baseUrl": base_url,
                "api": "openai-completions",
                "apiKey": api_key,
                "models": [
                    _model("plain", reasoning=False),
                    _model("reasoner", reasoning=True),
                    _model("deep", reasoning=True, thinkingLevelMap={"xhigh": "xhigh"}),
                ],
            }
        }
    }
    settings = {"retry": {"baseDelayMs": _RETRY_BASE_DELAY_MS}}
    (path / "models.json").write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
    (path / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


def _add_model(path: Path, model: dict[str, Any]) -> str:
    """Add ``model`` to the scripted provider in ``path/models.json``; its reference."""
    models_path = path / "models.json"
    models = json.loads(models_path.read_text(encoding="utf-8"))
    models["providers"][PROVIDER]["models"].append(model)
    models_path.write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
    return f"{PROVIDER}/{model['id']}"


def add_cached_model(path: Path) -> str:
    """Add model ``scripted/cached``: a prompt cache that lives 11 s and prices that make
    keeping it warm pay off in Pi's estimate, so Pi >= 1 refreshes it every second while
    idle.  Returns the model's reference."""
    cost = {"input": 100, "output": 100, "cacheRead": 1, "cacheWrite": 2000}
    return _add_model(path, _model("cached", reasoning=False, cost=cost, promptCache={"short": 11}))


def add_priced_model(path: Path) -> str:
    """Add model ``scripted/priced``: $1000 per million tokens in and out, so a scripted
    request (about a thousand tokens of system prompt and tools) costs about a dollar.
    Returns its reference."""
    cost = {"input": 1000, "output": 1000, "cacheRead": 0, "cacheWrite": 0}
    return _add_model(path, _model("priced", reasoning=False, cost=cost))


def add_vision_model(path: Path) -> str:
    """Add model ``scripted/vision``, which takes image input.  Returns its reference."""
    return _add_model(path, _model("vision", reasoning=False, input=["text", "image"]))


GATED_PROVIDER = "gated"
GATED_KEY_ENV = "SCRIPTED_GATE_KEY"


def add_gated_provider(path: Path, base_url: str) -> str:
    """Add provider ``gated`` (model ``locked``) whose key Pi reads from ``$SCRIPTED_GATE_KEY``.

    Returns the model's reference.  Start Pi with that variable set, and the
    ``revoke_gate.ts`` extension can take the key away while Pi runs.
    """
    models_path = path / "models.json"
    models = json.loads(models_path.read_text(encoding="utf-8"))
    models["providers"][GATED_PROVIDER] = {
        "baseUrl": base_url,
        "api": "openai-completions",
        "apiKey": f"${GATED_KEY_ENV}",
        "models": [_model("locked", reasoning=False)],
    }
    models_path.write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
    return f"{GATED_PROVIDER}/locked"


@dataclass
class PiEnv:
    """Where a test's Pi lives: its environment, agent dir, home and working directory."""

    env: dict[str, str]
    agent_dir: Path
    home: Path
    cwd: Path


def isolated_env(root: Path, agent_dir: Path) -> PiEnv:
    """An environment that keeps Pi inside ``root``: its own HOME, agent dir and cwd.

    The caller's ``PI_*`` variables are dropped, and Pi is told not to go online.
    """
    home = root / "home"
    cwd = root / "work"
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PI_")}
    env.update(
        HOME=str(home),
        PI_CODING_AGENT_DIR=str(agent_dir),
        PI_OFFLINE="1",
        PI_SKIP_VERSION_CHECK="1",
        PI_TELEMETRY="0",
    )
    return PiEnv(env, agent_dir, home, cwd)


def pi_env_for(root: Path, base_url: str) -> PiEnv:
    """An isolated Pi inside ``root`` whose agent dir offers the scripted LLM at ``base_url``
    (its three models, always the same ids)."""
    return isolated_env(root, write_agent_dir(root / "agent", base_url))
