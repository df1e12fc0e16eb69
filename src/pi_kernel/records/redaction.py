"""Keeping credentials out of what a notebook saves.

Transcripts, cassettes and exports never include the environment or Pi's provider
configuration.  A credential can still travel inside content: a tool that prints ``env``,
a model that repeats a header.  So before a record is written, the values of the
credentials Pi could use are replaced by ``REDACTED``: environment variables whose names
say key, token, secret, password or auth, the ``apiKey`` and header values of the agent
directory's ``models.json`` (literal or ``$NAME``), and the strings of its ``auth.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..agent_dir import agent_dir

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
MIN_SECRET_LENGTH = 8
"""Shorter values are not replaced: too likely to be ordinary words in an answer."""
_REFERENCE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


def secret_values(env: Mapping[str, str]) -> frozenset[str]:
    """The credential values a Pi started with ``env`` could use."""
    found = {value for name, value in env.items() if SECRET_NAME.search(name)}
    directory = agent_dir(env)
    for value in _strings(_read_json(directory / "models.json"), configured=True):
        reference = _REFERENCE.match(value)
        if reference:
            found.add(env.get(reference.group(1), ""))
        elif value in env:  # a bare variable name is read from the environment too
            found.add(env[value])
        elif not value.startswith("!"):  # a command's output cannot be known here
            found.add(value)
    found.update(_strings(_read_json(directory / "auth.json"), configured=False))
    return frozenset(value for value in found if len(value) >= MIN_SECRET_LENGTH)


def redact(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` (JSON data) with every occurrence of a secret replaced."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):  # a longer one may contain another
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    return value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _strings(data: Any, *, configured: bool) -> Iterator[str]:
    """``configured``: only ``apiKey`` and header values (models.json); else every string."""
    if isinstance(data, dict):
        for key, item in data.items():
            if configured and key == "apiKey" and isinstance(item, str):
                yield item
            elif configured and key == "headers" and isinstance(item, dict):
                yield from (value for value in item.values() if isinstance(value, str))
            else:
                yield from _strings(item, configured=configured)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item, configured=configured)
    elif isinstance(data, str) and not configured:
        yield data
