"""What ``notebook_variables`` says about the user's namespace: each name, its type and a
cheap summary, whatever the namespace holds.

The namespace is the user's, and anything can be in it: an object whose every attribute
raises, ``__class__`` included (Django's ``settings`` before it is configured), a
``__len__``, ``__repr__`` or ``shape`` that raises, a key that is no string at all
(``get_ipython().user_ns[1] = 2``).  So types are read with ``type()``, which asks the
object nothing, and each entry is described on its own: what raised is said in its row, and
the other rows are never lost with it.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Mapping
from typing import Any, TypeVar

SUMMARY_LIMIT = 120
"""Characters of a small value's repr shown in its row."""
HIDDEN = "hidden (credential-like name)"
"""What a row says instead of the value of a credential-like name."""

_T = TypeVar("_T")


class _Unsaid(Exception):
    """A probe of a value raised: ``what`` names the probe (``its __len__``)."""

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(what)
        self.what = what
        self.error = error


def variables(
    namespace: Mapping[Any, Any],
    hidden: Container[Any] = (),
    credential: Callable[[str], bool] = lambda name: False,
) -> str:
    """``%whos`` for Pi: the user's names (not those in ``hidden``, private or modules) with
    summaries that call nothing expensive; a ``credential`` name's value is not shown."""
    rows = []
    for key, value in sorted(namespace.items(), key=_order):
        if isinstance(key, str) and (key.startswith("_") or key in hidden):
            continue
        if _is_module(value):
            continue
        rows.append(_row(key, value, credential))
    return "\n".join(rows) if rows else "The namespace has no user variables yet."


def _row(key: Any, value: Any, credential: Callable[[str], bool]) -> str:
    if isinstance(key, str):
        label = key
    else:
        label = f"{_safe_repr(key)} (a key of type {type(key).__name__}, not a name)"
    try:
        if isinstance(key, str) and credential(key):
            return f"{label}: {type_name(value)}{hidden_summary(value)}"
        return f"{label}: {type_name(value)}{summary_of(value)}"
    except Exception as exc:  # a type whose own name raises: say so, keep the other rows
        return f"{label}: not described ({_error_name(exc)} raised)"


def _order(item: tuple[Any, Any]) -> tuple[int, str]:
    """Names in order, then the keys that are not strings (which do not compare with them)."""
    key = item[0]
    return (0, key) if isinstance(key, str) else (1, _safe_repr(key))


def summary_of(value: Any) -> str:
    """A short, cheap description: shapes, lengths and small values only; what raised, if
    something did."""
    try:
        return _summary(value)
    except _Unsaid as unsaid:
        return f", {unsaid.what} raised {_error_name(unsaid.error)}"
    except Exception as exc:  # a strange type: its row still says what it is
        return f", not summarised ({_error_name(exc)} raised)"


def hidden_summary(value: Any) -> str:
    """The summary of a credential-like name's value: its length, never the value."""
    kind = type(value)
    try:
        if issubclass(kind, str):
            return f", {_probe('its __len__', lambda: len(value))} characters, {HIDDEN}"
        if issubclass(kind, bytes):
            return f", {_probe('its __len__', lambda: len(value))} bytes, {HIDDEN}"
    except _Unsaid as unsaid:
        return f", {unsaid.what} raised {_error_name(unsaid.error)}, {HIDDEN}"
    return f", {HIDDEN}"


def _summary(value: Any) -> str:
    kind = type(value)
    module = kind.__module__.split(".")[0]
    if module == "pandas" and kind.__name__ == "DataFrame":
        items = _probe("its dtypes", lambda: list(value.dtypes.items())[:21])
        shape = _probe("its shape", lambda: tuple(value.shape))
        dtypes = ", ".join(f"{column}: {dtype}" for column, dtype in items[:20])
        more = ", …" if len(items) > 20 else ""
        return f", shape {shape}, columns {{{dtypes}{more}}}"
    if module == "pandas" and kind.__name__ == "Series":
        length = _probe("its __len__", lambda: len(value))
        return f", length {length}, dtype {_probe('its dtype', lambda: value.dtype)}"
    # Looked up on the type: an instance's __getattr__ (a lazy proxy's) is not woken.
    if hasattr(kind, "shape") and hasattr(kind, "dtype"):  # numpy and its kin
        shape = _probe("its shape", lambda: tuple(value.shape))
        return f", shape {shape}, dtype {_probe('its dtype', lambda: value.dtype)}"
    if issubclass(kind, bool | int | float | complex) or value is None:
        return f" = {_probe('its __repr__', lambda: repr(value))[:SUMMARY_LIMIT]}"
    if issubclass(kind, str | bytes):
        length = _probe("its __len__", lambda: len(value))
        shown = _probe("its __repr__", lambda: repr(value[:SUMMARY_LIMIT]))
        return f", length {length}: {shown}" if length > 40 else f" = {shown}"
    if issubclass(kind, list | tuple | set | frozenset | dict):
        return f", length {_probe('its __len__', lambda: len(value))}"
    return ""


def _probe(what: str, get: Callable[[], _T]) -> _T:
    try:
        return get()
    except Exception as exc:
        raise _Unsaid(what, exc) from exc


def type_name(value: Any) -> str:
    """The value's type (``type()``, not ``__class__``, which the value could fake or fail)."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _is_module(value: Any) -> bool:
    return issubclass(type(value), types.ModuleType)


def _error_name(error: BaseException) -> str:
    return type(error).__name__


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr failed: {_error_name(exc)}>"
