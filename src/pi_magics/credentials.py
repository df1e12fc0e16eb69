"""Credential-like names in what the read tools (``notebook_variables``,
``notebook_history``) tell Pi: their values stay in the kernel.

A name is credential-like when it says key, token, secret, passw, credential or auth in any
case (``SECRET_NAME``, the rule the records use for environment variables), or matches one
of ``PiMagics.hidden_names``: shell-style patterns (``*_pin``, ``dsn``) matched without
regard to case, by default from ``PI_KERNEL_HIDE_NAMES``.  Such a variable is listed with its
type and length, not its value; and in a reply, two things are replaced by ``[redacted]``:

- the string values such names hold now, wherever they appear (code, results, errors), when
  long enough to be told from ordinary words (``MIN_SECRET_LENGTH``);
- string literals given to such a name in code, whether it still holds them or not:
  ``API_KEY = "sk-…"``, ``api_key: str = "…"``, ``Client(api_key="…")``,
  ``{"password": "…"}``, ``environ["TOKEN"] = "…"``, ``setdefault("TOKEN", "…")``.

A literal is found by reading the text, not by parsing it (history may hold cells that do not
parse, and magics): a secret built up in pieces, or given to a name that does not look like
one, passes.  The two read tools apply this whatever the policy; ``notebook_python`` runs
Pi's code, which can print what it likes, and is not filtered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from pi_kernel.records.redaction import MIN_SECRET_LENGTH, REDACTED, SECRET_NAME, redact

_QUOTE = r"""(?P<prefix>[rRbBuUfF]{0,2})(?P<quote>'''|\"\"\"|'|")(?P<body>.*?)(?<!\\)(?P=quote)"""
_LITERAL_GIVEN = re.compile(
    # A name (``token``, ``self.api_key``) or a quoted key (``["TOKEN"]``, ``{"password"``) ...
    r"""(?:\b(?P<name>[A-Za-z_]\w*)|(?P<kq>['"])(?P<key>[^'"\n]{1,100})(?P=kq))"""
    # ... given a value: assigned (an annotation allowed), compared, a keyword argument or a
    # dict entry; a quoted key also as the first argument of a call (``setdefault``).
    r"""[ \t]*\]?[ \t]*(?::[ \t]*[\w.\[\], |]*?[ \t]*=|[=!:]?=|:|(?<=['"]),)[ \t]*\(?[ \t]*"""
    + _QUOTE,
    re.DOTALL,
)


def split_patterns(text: str) -> list[str]:
    """``PI_KERNEL_HIDE_NAMES``: patterns separated by spaces or commas."""
    return [pattern for pattern in re.split(r"[\s,]+", text) if pattern]


class Credentials:
    """Which names are credential-like, and a reply with their values taken out."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(pattern.lower() for pattern in patterns)

    def named(self, name: str) -> bool:
        lowered = name.lower()
        return bool(SECRET_NAME.search(name)) or any(
            fnmatchcase(lowered, pattern) for pattern in self.patterns
        )

    def values(self, namespace: Mapping[Any, Any]) -> frozenset[str]:
        """The strings (and text bytes) the namespace's credential-like names hold now."""
        found = set()
        for name, value in list(namespace.items()):
            if not isinstance(name, str) or not self.named(name):
                continue
            if issubclass(type(value), bytes):
                value = bytes(value).decode("utf-8", "replace")
            if issubclass(type(value), str) and len(value) >= MIN_SECRET_LENGTH:
                found.add(str(value))
        return frozenset(found)

    def hide(self, text: str, namespace: Mapping[Any, Any]) -> str:
        """``text`` without the literals given to credential-like names, nor the values
        the namespace's credential-like names hold."""
        masked = _LITERAL_GIVEN.sub(self._masked, text)
        hidden: str = redact(masked, self.values(namespace))
        return hidden

    def _masked(self, match: re.Match[str]) -> str:
        target = match["name"] or match["key"]
        if not self.named(target) or not match["body"]:
            return match[0]
        start, end = match.span("body")
        whole = match.start()
        return match[0][: start - whole] + REDACTED + match[0][end - whole :]
