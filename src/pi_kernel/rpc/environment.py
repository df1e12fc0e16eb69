"""The environment Pi's process gets: the kernel's, less what is not meant for Pi.

A kernel's environment carries credentials for the notebook server, not for Pi: JupyterHub
gives every single-user server, and so every kernel, its API token.  Pi's tools run with
Pi's environment, and a tool that prints ``env`` sends what it prints to the model provider.
So Pi's process does not get:

- ``JUPYTERHUB_*``: the hub's API token, OAuth client and URLs (the server's plumbing),
- ``JPY_API_TOKEN``: the same token under its old name,
- ``JUPYTER_TOKEN*``: the server's own token, or the file that holds it,
- ``JUPYTER_GATEWAY_*``: a kernel gateway's credentials,
- whatever ``PI_KERNEL_HIDE_ENV`` names: variable names or shell-style patterns (``MY_*``),
  separated by spaces or commas.

Provider keys (``ANTHROPIC_API_KEY`` and the like) are left alone: Pi needs them.  What Pi's
code reads inside the kernel (the kernel tools) is another door: replies carry the hidden
values replaced (``hidden_values``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

from .. import variables

HIDDEN_BY_DEFAULT = ("JUPYTERHUB_*", "JPY_API_TOKEN", "JUPYTER_TOKEN*", "JUPYTER_GATEWAY_*")

MIN_HIDDEN_LENGTH = 8
"""Shorter values are not replaced in replies: too likely to be ordinary words."""


def hidden_patterns(env: Mapping[str, str]) -> tuple[str, ...]:
    """The defaults and what ``PI_KERNEL_HIDE_ENV`` adds."""
    extra = (
        pattern
        for pattern in re.split(r"[\s,]+", variables.read(variables.HIDE_ENV, env) or "")
        if pattern
    )
    return (*HIDDEN_BY_DEFAULT, *extra)


def for_pi(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables Pi must not see."""
    patterns = hidden_patterns(env)
    return {
        name: value
        for name, value in env.items()
        if not any(fnmatchcase(name, pattern) for pattern in patterns)
    }


def hidden_values(env: Mapping[str, str]) -> frozenset[str]:
    """The values ``for_pi`` leaves out (long enough to be told from ordinary text)."""
    kept = for_pi(env)
    return frozenset(
        value for name, value in env.items() if name not in kept and len(value) >= MIN_HIDDEN_LENGTH
    )
