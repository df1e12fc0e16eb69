"""The visible pieces of a turn: text, thinking, tool calls, notices, errors.

``Turn`` (in ``turn``) folds Pi's events into these; the display, the transcript and the
export read them.  Each block has a ``version`` that grows with every change, so a display
sends only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ToolState = Literal["pending", "running", "ok", "error", "interrupted"]
NoticeLevel = Literal["info", "warning", "error"]


@dataclass(eq=False)
class Block:
    """One visible piece of a turn.  ``version`` grows with every change to it."""

    version: int = 0
    done: bool = False
    restated: int = 0
    """Grows when a finished block's final state changes (a retried error becomes its retry
    notice): a display shows a finished block again only then."""

    def touch(self) -> None:
        self.version += 1

    def restate(self) -> None:
        self.restated += 1
        self.touch()

    @property
    def visible(self) -> bool:
        return True


class _Streamed(Block):
    """A block whose text arrives in deltas.

    Deltas are kept as chunks and joined when read, so a 100 000-token answer costs O(n)
    rather than copying the whole text on every delta.
    """

    def __init__(self, text: str = "", *, done: bool = False, version: int = 0) -> None:
        super().__init__(version=version, done=done)
        self._chunks: list[str] = [text] if text else []
        self._joined: str | None = text

    @property
    def text(self) -> str:
        if self._joined is None:
            self._joined = "".join(self._chunks)
            self._chunks = [self._joined]
        return self._joined

    @text.setter
    def text(self, value: str) -> None:
        self._chunks = [value]
        self._joined = value

    def append(self, delta: str) -> None:
        self._chunks.append(delta)
        self._joined = None

    @property
    def visible(self) -> bool:
        return bool(self.text.strip())


class TextBlock(_Streamed):
    """Assistant text, Markdown."""

    cut_off = False
    """Streamed by an attempt that failed and that Pi retried: it stays where it was shown,
    and is not part of the answer."""


class ThinkingBlock(_Streamed):
    """The model's reasoning, shown collapsed."""

    def __init__(
        self, text: str = "", *, redacted: bool = False, done: bool = False, version: int = 0
    ) -> None:
        super().__init__(text, done=done, version=version)
        self.redacted = redacted

    @property
    def visible(self) -> bool:
        return super().visible or self.redacted


@dataclass(eq=False)
class ToolBlock(Block):
    """One tool call: its name and arguments, its (partial, then final) output, its state,
    how long it took (Pi >= 1), and the calls made inside it (codemode), in order."""

    call_id: str = ""
    name: str = ""
    arguments: dict[str, object] = field(default_factory=dict)
    output: str = ""
    output_cut: int = 0
    """Characters of the output before ``output`` that are not there (a transcript kept only
    the end, and this block was rebuilt from it)."""
    state: ToolState = "pending"
    duration_ms: float | None = None
    diff: str = ""
    """The change Pi's ``edit`` made, as a diff (``edit_diff``)."""
    approval: str = ""
    """The user's answer when the call waited for it (``PiMagics.ask_before``): "approved",
    or "not approved: " and why; empty when nobody was asked."""
    calls: list[ToolBlock] = field(default_factory=list)
    parent: ToolBlock | None = field(default=None, repr=False)

    def touch(self) -> None:
        super().touch()
        if self.parent is not None:  # the parent's block draws this one: it changed too
            self.parent.touch()


@dataclass(eq=False)
class NoticeBlock(Block):
    """A one-line notice: a retry, a compaction, a dialog, an interruption."""

    level: NoticeLevel = "info"
    text: str = ""


@dataclass(eq=False)
class ErrorBlock(Block):
    """A failure of the turn itself (a model or provider error), with Pi's message."""

    message: str = ""
    retry_notice: str | None = None
    """Set when Pi retried after this error: the block then shows that notice, in its
    place (so the cell's output is replaced, never blanked); it is no longer an error."""

    @property
    def failed(self) -> bool:
        return self.retry_notice is None


DIFF_LIMIT = 20_000
"""Characters of an edit's diff that a cell shows and a transcript keeps: the first ones."""


def edit_diff(details: object) -> str:
    """The change an ``edit`` tool call made, from its result's details: Pi's unified
    ``patch`` (0.87 and later), else its line-numbered ``diff`` (all Pis since 0.73), cut to
    ``DIFF_LIMIT`` at a line with a count of the rest."""
    if not isinstance(details, dict):
        return ""
    diff = details.get("patch") or details.get("diff")
    if not isinstance(diff, str):
        return ""
    if len(diff) <= DIFF_LIMIT:
        return diff
    kept = diff[: diff.rfind("\n", 0, DIFF_LIMIT) + 1] or diff[:DIFF_LIMIT]
    return f"{kept}… {len(diff) - len(kept):,} more characters of the diff not kept\n"
