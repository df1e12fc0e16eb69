"""Where the main command's Pi gets its models: the user's own Pi, or the local demo model.

In order (the first that applies wins):

1. ``PI_CODING_AGENT_DIR`` is set: that agent dir, as configured, if Pi offers models there.
2. ``~/.pi/agent`` exists: the user's own Pi setup, if Pi offers models there.
3. Neither: Pi started in pi-kernel's own agent dir, if provider keys in the environment
   (such as ``OPENAI_API_KEY``) give it models.  Pi would create ``~/.pi`` on its first run;
   this way the user's home stays as it was.
4. Otherwise the local demo model, registered in pi-kernel's own agent dir.

Asking Pi is the only test of "has usable models" that holds for every kind of credential
(auth.json logins, models.json providers, environment keys).  Nothing here writes into an
agent dir that is not pi-kernel's own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import variables
from ..agent_dir import agent_dir
from ..rpc import ModelInfo, PiInstall, open_client
from .local_model import clear_agent_config

Kind = Literal["configured", "user", "environment", "local"]


@dataclass(frozen=True)
class Backend:
    """The Pi setup chosen, and the environment that gives it to Pi (and its starters)."""

    kind: Kind
    env: dict[str, str]
    description: str
    models: tuple[str, ...] = ()
    """The model references Pi offered (empty for ``local``: the server is not up yet)."""


async def probe_models(
    install: PiInstall, env: Mapping[str, str] | None = None
) -> tuple[ModelInfo, ...]:
    """Start Pi with ``env`` (no session, in a scratch directory) and return its models.

    Offline: listing the models needs no network (catalog refreshes, version checks).
    """
    offline = {**(os.environ if env is None else env), variables.PI_OFFLINE: "1"}
    with tempfile.TemporaryDirectory(prefix="pi-kernel-probe-") as cwd:
        async with open_client(install, args=("--no-session",), cwd=cwd, env=offline) as client:
            return tuple(await client.get_available_models())


async def choose_backend(
    install: PiInstall, own_agent_dir: Path, env: Mapping[str, str] | None = None
) -> Backend:
    """Pick the backend (see the module docstring); ``own_agent_dir`` is pi-kernel's."""
    base = dict(os.environ if env is None else env)
    configured = variables.read(variables.AGENT_DIR, base)
    if configured:
        models = await probe_models(install, base)
        if models:
            return _found("configured", base, f"your Pi agent dir {configured}", models)
        reason = f"Pi offers no models with {variables.AGENT_DIR}={configured}"
    elif (where := agent_dir(base)).is_dir():  # ~/.pi/agent
        models = await probe_models(install, base)
        if models:
            return _found("user", base, f"your Pi setup in {where}", models)
        reason = f"Pi offers no models with your setup in {where}"
    else:
        own = {**base, variables.AGENT_DIR: str(own_agent_dir)}
        clear_agent_config(own_agent_dir)
        models = await probe_models(install, own)
        if models:
            description = f"provider keys in your environment (Pi's config in {own_agent_dir})"
            return _found("environment", own, description, models)
        reason = "there is no Pi setup (~/.pi) and no provider key in the environment"
    local = {**base, variables.AGENT_DIR: str(own_agent_dir), variables.PI_OFFLINE: "1"}
    return Backend("local", local, f"the local demo model, because {reason}")


def _found(
    kind: Kind, env: dict[str, str], description: str, models: tuple[ModelInfo, ...]
) -> Backend:
    return Backend(kind, env, description, tuple(sorted(model.ref for model in models)))
