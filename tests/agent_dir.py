"""A throwaway Pi agent directory (``PI_CODING_AGENT_DIR``) wired to the scripted LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MODELS", "PROVIDER", "write_agent_dir"]

PROVIDER = "scripted"
# plain: no reasoning, levels ["off"]; reasoner: off..high; deep: off..xhigh.
MODELS = ("plain", "reasoner", "deep")

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


def write_agent_dir(path: Path, base_url: str, *, api_key: str = "scripted-test-key") -> Path:
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
