"""What a ``%%pi`` cell may ask: ``{name}`` fields filled from the user's variables, a prompt
Pi can be sent, and a ``--out`` name that breaks nothing.  Each refusal is one sentence."""

from __future__ import annotations

import builtins
import keyword
import string
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError


class _NamesOnly(string.Formatter):
    """``{name}`` from the user's namespace; no attribute or item access, no format code."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise UsageError(f"Interpolation takes plain names only, not {{{field_name}}}.")
        if field_name not in kwargs:
            raise UsageError(f"Interpolation: no Python variable named {field_name!r}.")
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        # A spec such as {x:>30000000} would build (and send, and save) a huge prompt.
        if format_spec:
            raise UsageError(
                f"Interpolation takes plain {{name}} fields, not {{name:{format_spec}}}."
            )
        return str(value)


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    try:
        return _NamesOnly().vformat(template, (), dict(namespace))
    except ValueError as exc:
        raise UsageError(
            f"Interpolation: {exc} (write {{{{ and }}}} for literal braces)."
        ) from None


def check_variable_name(name: str) -> None:
    """``--out NAME``: a name the answer can be stored in without breaking Python."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"--out needs a Python variable name, not {name!r}.")
    if hasattr(builtins, name):
        raise UsageError(f"--out {name} would hide Python's built-in {name}: choose another name.")


def check_prompt(prompt: str) -> None:
    """A prompt Pi can be sent: valid Unicode (a lone surrogate cannot be encoded)."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"The prompt holds a character that is not valid Unicode ({prompt[exc.start]!r} "
            f"at position {exc.start}): remove it, or fix the variable it came from."
        ) from None
