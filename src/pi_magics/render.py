"""A turn's blocks as notebook outputs: safe MIME bundles, streamed as cheap display updates.

Two layers:

* Pure functions turn one block (or the turn's footer) into a MIME bundle.  Nothing that
  came from the model or a tool reaches the frontend as active HTML: HTML bundles escape it,
  and Markdown goes through ``markdown.safe_markdown``.
* ``TurnDisplay`` owns a cell's outputs for one turn: one display output per visible block,
  updated only when the block changed, at most ``MAX_UPDATES_PER_SECOND`` times a second,
  and never again once its final state is shown.  A long answer streams in segments so the
  bytes sent grow with its length, not with its square.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from IPython import get_ipython
from IPython.display import display as ipython_display

from pi_kernel.blocks import (
    Block,
    ErrorBlock,
    NoticeBlock,
    NoticeLevel,
    TextBlock,
    ThinkingBlock,
    ToolBlock,
)
from pi_kernel.records.markdown import clean_text, paragraph_break, safe_markdown
from pi_kernel.records.redaction import redact
from pi_kernel.rpc.usage import UsageTally
from pi_kernel.transcript import MIMETYPE as TRANSCRIPT_MIMETYPE
from pi_kernel.transcript import Transcript
from pi_kernel.turn import Turn, tokens_text

from .tool_blocks import Bundle, elapsed, shorten, tool_bundle

EMPTY: Bundle = {"text/plain": ""}
"""What an output shows once its block is gone (a retried attempt's remains)."""

MAX_UPDATES_PER_SECOND = 15
"""Display refreshes per second while streaming: smooth to the eye, light on the websocket."""
FREEZE_AT = 1024
"""Characters of streaming text after which the part before its last paragraph break is
frozen into an output of its own, so each refresh resends only the short tail."""
STREAM_BUDGET = 1.5
"""Refreshes of growing text may send at most this many times the bytes on screen..."""
STREAM_ALLOWANCE = 256_000
"""...plus this many bytes, so the first quarter megabyte streams at the full refresh rate."""
HEARTBEAT = 30.0
"""Seconds a running turn may show nothing new before it shows how long Pi has been at it: a
running tool's time, else a "still working" line.  Idle culling counts a kernel's output as
activity, not its being busy (jupyterhub-idle-culler), so a long quiet tool run then still
counts; culling after 60 s of silence or more never stops a server under a running turn."""
THINKING_PLAIN_MAX_CHARS = 200
"""Terminals get only the start of the thinking; it is collapsed in a notebook anyway."""

_NOTICE_STYLE = {
    "info": ("ℹ", "var(--jp-ui-font-color2, #757575)"),
    "warning": ("⚠", "var(--jp-warn-color1, #ef6c00)"),
    "error": ("✖", "var(--jp-error-color1, #c62828)"),
}

# -- one block, one bundle --------------------------------------------------------------------


def text_bundle(text: str) -> Bundle:
    """Assistant text: Markdown for notebooks, the text itself for terminals."""
    text = clean_text(text)
    return {"text/markdown": safe_markdown(text), "text/plain": text}


def thinking_bundle(block: ThinkingBlock) -> Bundle:
    """The model's reasoning, collapsed under a "Thinking" summary."""
    text = clean_text(block.text).strip()
    title = "Thinking" if block.done else "Thinking…"
    if block.redacted and not text:
        title, text = "Thinking (redacted)", ""
    body = f'<pre style="white-space: pre-wrap">{html.escape(text)}</pre>' if text else ""
    style = "color: var(--jp-ui-font-color2, #757575); cursor: pointer"
    return {
        "text/html": f'<details><summary style="{style}">{title}</summary>{body}</details>',
        "text/plain": f"[{title.lower()}] {shorten(text, THINKING_PLAIN_MAX_CHARS)}".rstrip(),
    }


def notice_bundle(block: NoticeBlock) -> Bundle:
    """One line about something that happened: a retry, a compaction, an interruption."""
    return _notice(block.level, block.text)


def _notice(level: NoticeLevel, text: str) -> Bundle:
    text = clean_text(text)
    icon, color = _NOTICE_STYLE[level]
    return {
        "text/html": (
            f'<div style="color: {color}; white-space: pre-wrap">{icon} {html.escape(text)}</div>'
        ),
        "text/plain": f"[{level}] {text}",
    }


def error_bundle(block: ErrorBlock) -> Bundle:
    """A failure of the turn, with Pi's message: unmistakably an error."""
    message = clean_text(block.message) or "Pi reported an error without a message."
    style = (
        "color: var(--jp-error-color1, #c62828); background: var(--jp-error-color3, #fdecea);"
        " border-left: 4px solid var(--jp-error-color1, #c62828); padding: 0.3em 0.6em;"
        " white-space: pre-wrap"
    )
    return {
        "text/html": f'<div style="{style}"><b>Error:</b> {html.escape(message)}</div>',
        "text/plain": f"[error] {message}",
    }


def block_bundle(block: Block) -> Bundle:
    """The bundle for any block; a kind this renderer does not know shows nothing."""
    if isinstance(block, TextBlock):
        return text_bundle(block.text)
    if isinstance(block, ThinkingBlock):
        return thinking_bundle(block)
    if isinstance(block, ToolBlock):
        return tool_bundle(block)
    if isinstance(block, NoticeBlock):
        return notice_bundle(block)
    if isinstance(block, ErrorBlock):
        if block.retry_notice is not None:  # Pi retried: the error's output becomes the notice
            return _notice("warning", block.retry_notice)
        return error_bundle(block)
    return EMPTY


def footer_line(turn: Turn) -> str:
    """``provider/model · thinking LEVEL · N in / M out tokens · $cost · 1.2 s`` (+ status)."""
    parts: list[str] = []
    model = "/".join(part for part in (turn.provider, turn.model) if part)
    if model:
        parts.append(model)
    if turn.thinking_level:
        parts.append(f"thinking {turn.thinking_level}")
    parts.append(tokens_text(turn.usage.input, turn.usage.output))
    parts.append(f"${turn.usage.cost:.4f}")
    parts.append(f"{turn.duration:.1f} s")
    if turn.cache_warming is not None and turn.cache_warming.count:
        parts.append(f"+{warming_text(turn.cache_warming)} since the last cell")
    if turn.status != "completed":
        parts.append(turn.status)
    if turn.place is not None and (note := turn.place.note()):
        parts.append(note)
    if turn.replayed_from:
        parts.append(f"replayed from {turn.replayed_from}")
    return clean_text(" · ".join(parts))


def warming_text(warming: UsageTally) -> str:
    """``$0.0012 cache warming (3 refreshes)``: what idle prompt-cache refreshes cost."""
    refreshes = "refresh" if warming.count == 1 else "refreshes"
    return f"${warming.cost:.4f} cache warming ({warming.count} {refreshes})"


def footer_bundle(
    turn: Turn, transcript: Transcript | None = None, budget: str | None = None
) -> Bundle:
    """The footer line, with the budget (``$0.12 of $0.50``) when a limit is set; with
    ``transcript``, the turn's record rides along (JSON data under its own mimetype:
    frontends show the HTML, the notebook keeps both)."""
    line = footer_line(turn) + (f" · budget {budget}" if budget else "")
    style = "color: var(--jp-ui-font-color2, #757575); font-size: 0.85em"
    bundle: Bundle = {
        "text/html": f'<div style="{style}">{html.escape(line)}</div>',
        "text/plain": line,
    }
    if transcript is not None:
        bundle[TRANSCRIPT_MIMETYPE] = transcript.model_dump(mode="json")
    return bundle


# -- the cell's outputs -----------------------------------------------------------------------


class DisplayHandle(Protocol):
    """What ``IPython.display.display(..., display_id=True)`` returns."""

    def update(self, obj: Mapping[str, Any], /, *, raw: bool) -> None: ...


class Display(Protocol):
    """The shape of ``IPython.display.display`` that ``TurnDisplay`` uses."""

    def __call__(
        self, obj: Mapping[str, Any], /, *, raw: bool, display_id: bool
    ) -> DisplayHandle: ...


@dataclass(eq=False)
class _Output:
    handle: DisplayHandle
    bundle: Bundle
    size: int


@dataclass(eq=False)
class _Shown:
    """The outputs of one block and what they last showed."""

    outputs: list[_Output] = field(default_factory=list)
    version: int = -1
    final: bool = False
    restated: int = 0
    cleared: bool = False
    sealed: int = 0
    """Text: how many of ``outputs`` are frozen segments; the next one is the live tail."""
    frozen: int = 0
    """Text: how many characters of the block those segments hold."""
    since: float = 0.0
    """When the block was first shown (a running tool's time is counted from it)."""


def _kernel_display() -> tuple[Display, bool]:
    """IPython's ``display``, and whether it replaces outputs in place (a kernel does;
    terminal IPython prints every update again, so there only the final state is shown)."""
    return ipython_display, getattr(get_ipython(), "kernel", None) is not None


class TurnDisplay:
    """The display outputs of one turn: call ``update`` as often as you like, then ``finish``."""

    def __init__(
        self,
        display: Display | None = None,
        *,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
        secrets: frozenset[str] = frozenset(),
        heartbeat: float = HEARTBEAT,
    ) -> None:
        """``secrets``: credential values to replace wherever they appear (a tool printing
        the environment must not put a key into the notebook).  ``heartbeat``: see
        ``HEARTBEAT``; a ``quiet`` turn in a notebook shows the "still working" line too (a
        terminal, where nothing is replaced, does not)."""
        streams = True
        if display is None:
            display, streams = _kernel_display()
            quiet = quiet or not streams
        self._beats = streams
        self._display = display
        self._secrets = secrets
        self._quiet = quiet
        self._clock = clock
        self._heartbeat = heartbeat
        self._started = self._last_sent = clock()
        self._waiting: _Shown | None = None
        """The "still working" line while it shows."""
        self._last_refresh = -math.inf
        self._shown: dict[Block, _Shown] = {}
        self._newest: _Shown | None = None
        self._screen = 0
        self._finished = False
        self.bytes_sent = 0
        """The characters of every bundle sent (the streaming budget's measure)."""
        self.pending = False
        """An update arrived too soon and is not shown yet; the next ``update`` or ``finish``
        shows it."""

    @property
    def streams(self) -> bool:
        """Whether outputs are replaced in place (a notebook, not a terminal): a call's
        block then shows before the call runs, in a ``quiet`` cell too."""
        return self._beats

    def update(self, turn: Turn, *, now: bool = False) -> None:
        """Show what changed, unless the last refresh was less than 1/15 s ago (``now``:
        show it anyway, as before a question to the user)."""
        if self._finished:
            return
        clock = self._clock()
        if self._quiet:
            if self._beats and clock - self._last_sent >= self._heartbeat:
                self._beat(turn, clock)
            return
        # A clock ticking at exactly the limit must not lose every other refresh to rounding.
        if not now and clock - self._last_refresh < 1 / MAX_UPDATES_PER_SECOND - 1e-9:
            self.pending = True
            return
        self.pending = False
        sent = self.bytes_sent
        self._render(turn, final=False)
        # Only a refresh that sent something holds the next one back: a first text delta
        # must not wait out the interval of a refresh that showed nothing (agent_start).
        if self.bytes_sent != sent:
            self._last_refresh = self._last_sent = clock
            self._stop_waiting()
        elif clock - self._last_sent >= self._heartbeat:
            self._beat(turn, clock)

    def next_refresh_in(self) -> float:
        """Seconds until ``update`` may show something again (quiet: the refresh interval)."""
        if self._quiet or self._finished:
            return 1 / MAX_UPDATES_PER_SECOND
        return max(0.0, self._last_refresh + 1 / MAX_UPDATES_PER_SECOND - self._clock())

    def finish(
        self, turn: Turn, transcript: Transcript | None = None, *, budget: str | None = None
    ) -> None:
        """Show every block's final state, then the footer (carrying ``transcript``, and
        saying how much of the ``budget`` is spent).  Later calls do nothing."""
        if self._finished:
            return
        self._finished = True
        self.pending = False
        self._render(turn, final=True)
        self._stop_waiting()
        self._put(_Shown(), 0, footer_bundle(turn, transcript, budget), force=True)

    def show_up_to(self, turn: Turn, last: Block) -> None:
        """Show the turn up to ``last`` (a tool about to run, or to be approved) as the
        cell's newest output, so what its code prints and draws lands under it.  A block
        already shown after it (a sibling call Pi announced first) is blanked and shown
        again below, at the next ``update``.  Also in a quiet cell: what runs in the user's
        kernel is shown before it runs."""
        if self._finished or not self._beats:
            return
        for block in turn.blocks[len(_up_to(turn, last)) :]:
            shown = self._shown.pop(block, None)
            if shown is not None:
                self._blank(shown)
        self._stop_waiting()
        self._render(turn, final=False, last=last)
        self._last_refresh = self._last_sent = self._clock()

    def redraw(self, turn: Turn, last: Block) -> None:
        """Show the turn up to ``last`` again from scratch: the cell's outputs were cleared
        (by ``clear_output()`` in Pi's code), and the turn's record must not go with them."""
        if self._finished or not self._beats:
            return
        self._shown.clear()
        self._waiting = self._newest = None
        self._screen = 0
        self._render(turn, final=False, last=last)

    def _render(self, turn: Turn, *, final: bool, last: Block | None = None) -> None:
        present = set(turn.blocks)
        for gone, outputs in self._shown.items():
            if gone not in present and not outputs.cleared:
                self._blank(outputs)
                outputs.cleared = outputs.final = True
        creating = True
        for block in turn.blocks if last is None else _up_to(turn, last):
            shown = self._shown.get(block)
            if shown is None:
                if not block.visible:
                    # It may still fill; showing a later block first would put it out of order.
                    creating = creating and (block.done or final)
                    continue
                if not creating:
                    continue
                shown = self._shown[block] = _Shown(since=self._clock())
            if (shown.final and shown.restated == block.restated) or (
                shown.version == block.version and not final
            ):
                continue
            done = final or block.done
            if self._show(block, shown, final=done):
                shown.version, shown.final = block.version, done
                shown.restated = block.restated

    def _beat(self, turn: Turn, clock: float) -> None:
        """Nothing new for ``heartbeat`` seconds: say how long Pi has been at it."""
        running = [
            (block, shown)
            for block, shown in self._shown.items()
            if isinstance(block, ToolBlock) and block.state == "running" and shown.outputs
        ]
        for block, shown in running:
            self._put(shown, 0, tool_bundle(block, running_for=clock - shown.since), force=True)
        if not running:
            self._waiting = self._waiting or _Shown()
            line = f"Pi is still working ({elapsed(clock - self._started)} so far)"
            self._put(self._waiting, 0, _notice("info", line), force=True)
        self._last_sent = clock

    def _stop_waiting(self) -> None:
        """Blank the "still working" line once something else shows (a later quiet spell
        gets a new one, below what came since)."""
        if self._waiting is not None:
            self._blank(self._waiting)
            self._waiting = None

    def _show(self, block: Block, shown: _Shown, *, final: bool) -> bool:
        """Send the block's current state; False when the budget deferred part of it."""
        if not block.visible:
            self._blank(shown)
            return True
        if isinstance(block, TextBlock):
            return self._show_text(block, shown, final=final)
        # Only text and thinking grow without bound; a tool's output is capped.
        growing = isinstance(block, ThinkingBlock)
        return self._put(shown, 0, block_bundle(block), force=final or not growing)

    def _show_text(self, block: TextBlock, shown: _Shown, *, final: bool) -> bool:
        text = block.text
        # Freeze finished paragraphs into outputs of their own, which are never sent again;
        # only the block's newest output may split, or a later block's would end up between.
        if not final and (not shown.outputs or self._newest is shown):
            while (cut := _freeze_point(text, shown.frozen)) is not None:
                self._put(shown, shown.sealed, text_bundle(text[shown.frozen : cut]), force=True)
                shown.sealed, shown.frozen = shown.sealed + 1, cut
        rest = text[shown.frozen :]
        if not rest.strip() and shown.sealed == len(shown.outputs):
            return True
        # Building a long bundle costs as much as sending it: not when it would be held back.
        if not final and not self._affordable(shown, shown.sealed, 2 * len(rest)):
            return False
        return self._put(shown, shown.sealed, text_bundle(rest), force=final)

    def _blank(self, shown: _Shown) -> None:
        for index in range(len(shown.outputs)):
            self._put(shown, index, EMPTY, force=True)

    def _put(self, shown: _Shown, index: int, bundle: Bundle, *, force: bool) -> bool:
        """Show ``bundle`` in the block's ``index``-th output, creating it if it is new."""
        if self._secrets:
            bundle = redact(bundle, self._secrets)
        size = _size(bundle)
        if index == len(shown.outputs):
            handle = self._display(bundle, raw=True, display_id=True)
            shown.outputs.append(_Output(handle, bundle, size))
            self._newest = shown
            self._screen += size
        else:
            output = shown.outputs[index]
            if bundle == output.bundle:
                return True
            # Growing text may fall behind to stay within budget; a final state never waits.
            if not force and not self._affordable(shown, index, size):
                return False
            output.handle.update(bundle, raw=True)
            self._screen += size - output.size
            output.bundle, output.size = bundle, size
        self.bytes_sent += size
        return True

    def _affordable(self, shown: _Shown, index: int, size: int) -> bool:
        """Whether replacing the output with one of ``size`` keeps streaming within budget."""
        if index == len(shown.outputs):
            return True
        screen = self._screen - shown.outputs[index].size + size
        return self.bytes_sent + size <= STREAM_BUDGET * screen + STREAM_ALLOWANCE


def _up_to(turn: Turn, last: Block) -> list[Block]:
    """The turn's blocks up to ``last``; all of them when ``last`` is not one (a call made
    inside another call is drawn in its parent's block)."""
    return turn.blocks[: turn.blocks.index(last) + 1] if last in turn.blocks else turn.blocks


def _size(bundle: Bundle) -> int:
    # Characters, not JSON bytes: encoding a long answer just to measure it costs as much
    # as sending it, and the budget only needs the proportion.
    # A transcript (JSON data) is only ever sent once, in the final footer: not counted.
    return sum(len(key) + len(value) for key, value in bundle.items() if isinstance(value, str))


def _freeze_point(text: str, start: int) -> int | None:
    """Where to freeze ``text[start:]``: after its last paragraph break outside a code fence,
    once that tail is longer than ``FREEZE_AT``; None while it is short or has no such break."""
    if len(text) - start <= FREEZE_AT:
        return None
    # Whole lines only: a line still being written may yet open a fence.
    cut = paragraph_break(text[start : text.rfind("\n") + 1])
    return None if cut is None else start + cut
