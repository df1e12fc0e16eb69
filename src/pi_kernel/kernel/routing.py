"""Where a Pi kernel cell goes, and what completion completes in it: pure functions.

A cell whose first line does not start with ``%`` or ``!`` is a prompt (it becomes a
``%%pi`` cell); ``%%py`` makes the rest of the cell Python.  Routing and completion both ask
``cell_kind``, so they never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PYTHON_MARKER = "%%py"
"""A cell's first line that makes the rest of the cell Python."""

CellKind = Literal["prompt", "python", "magic", "shell"]


def cell_kind(first_line: str) -> CellKind:
    """What a cell is, from its first non-blank line (stripped): routing and completion
    both ask this, so they never disagree."""
    if first_line == PYTHON_MARKER:
        return "python"
    if first_line.startswith("%"):
        return "magic"
    if first_line.startswith("!"):
        return "shell"
    return "prompt"


def route_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: a prompt becomes ``%%pi``; ``%%py`` cells become Python."""
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return lines
    kind = cell_kind(lines[first].strip())
    if kind == "python":
        return lines[first + 1 :]
    if kind == "prompt":
        return ["%%pi\n", *lines[first:]]
    return lines


@dataclass
class CompletionTarget:
    """What the word at the cursor is, and where it starts."""

    kind: Literal["slash", "subcommand", "model", "prompt"]
    start: int
    prefix: str


def completion_target(code: str, cursor: int) -> CompletionTarget | None:
    """What to complete at ``cursor``; None where IPython's own completion applies (Python
    after ``%%py``, other magics, shell lines)."""
    before = code[:cursor]
    head = before.lstrip()
    first_line = code.lstrip().split("\n", 1)[0].strip()
    kind = cell_kind(first_line)
    if kind in ("python", "shell"):
        return None
    word_start = max(before.rfind(space) for space in " \t\n") + 1
    word = before[word_start:]
    if kind == "magic":
        if "\n" not in head:  # on the magic's own line
            words = head[: len(head) - len(word)].split()
            if words == ["%pi"]:
                return CompletionTarget("subcommand", word_start, word)
            if words[:1] in (["%pi"], ["%%pi"]) and words[-1] == "--model":
                return CompletionTarget("model", word_start, word)
            return None
        return (
            CompletionTarget("prompt", word_start, word) if first_line.startswith("%%pi") else None
        )
    if head.startswith("/") and not any(char.isspace() for char in head):
        return CompletionTarget("slash", cursor - len(head), head)
    return CompletionTarget("prompt", word_start, word)


def token_at(code: str, cursor: int) -> str:
    start = cursor
    while start > 0 and not code[start - 1].isspace():
        start -= 1
    end = cursor
    while end < len(code) and not code[end].isspace():
        end += 1
    return code[start:end]
