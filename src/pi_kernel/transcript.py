"""A turn as a self-contained, versioned record: what was asked, of which model, with which
settings, and what came back.

A ``Transcript`` is saved in the notebook beside each Pi output (mimetype ``MIMETYPE``), in
cassettes for replay, and in JSON-lines exports.  It holds what the turn showed and the
facts needed to read it later; never the environment, provider configuration or headers.
A long tool output keeps its end, as the cell shows it (``output_tail``), and counts what
was cut; known secret values are replaced (see ``pi_kernel.records.redaction``).

``Transcript.to_turn`` rebuilds the turn, so a replayed cell renders exactly as the
recorded one did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from . import __version__
from .blocks import (
    Block,
    ErrorBlock,
    NoticeBlock,
    NoticeLevel,
    TextBlock,
    ThinkingBlock,
    ToolBlock,
    ToolState,
)
from .rpc.usage import UsageTally
from .turn import Turn, TurnPlace, TurnStatus

MIMETYPE = "application/vnd.pi.transcript+json"
SCHEMA_VERSION: Literal[1] = 1
TOOL_OUTPUT_LIMIT = 20_000
"""Characters of one tool's output that a cell shows and a transcript keeps: the last ones
(the end of a long output is what matters: the error, the result)."""
TOOL_OUTPUT_LINES = 200
"""...and at most this many of its last lines."""


def output_tail(text: str) -> tuple[str, int]:
    """The end of a tool's output that is kept, and how many characters before it are not.

    The cell and the transcript both cut with this, so a saved notebook's record and its
    visible output agree on what survived.
    """
    kept = text[-TOOL_OUTPUT_LIMIT:]
    if len(kept) < len(text) and "\n" in kept:
        kept = kept[kept.index("\n") + 1 :]  # start on a whole line
    lines = kept.splitlines(keepends=True)
    if len(lines) > TOOL_OUTPUT_LINES:
        kept = "".join(lines[-TOOL_OUTPUT_LINES:])
    return kept, len(text) - len(kept)


PROMPT_LIMIT = 20_000
"""Characters of a prompt that its transcript keeps: the first ones, and the count of the
rest (the cell's source, or the variables it was filled from, hold the whole prompt; a pasted
5 MB prompt is not saved a second time)."""


def cut_marker(cut: int) -> str:
    """The line that says a tool output's start was cut (exports write it)."""
    return f"[pi-kernel: {cut:,} earlier characters of this output were not kept]"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPart(_Record):
    type: Literal["text"] = "text"
    text: str


class ThinkingPart(_Record):
    type: Literal["thinking"] = "thinking"
    text: str
    redacted: bool = False


class ToolPart(_Record):
    type: Literal["tool"] = "tool"
    call_id: str
    name: str
    arguments: dict[str, object]
    output: str
    state: ToolState
    is_error: bool
    output_cut: int = 0
    """Characters before ``output`` that were cut (see ``output_tail``)."""
    duration_ms: float | None = None
    """How long the tool ran, as Pi measured it (Pi >= 1)."""
    diff: str = ""
    """What an ``edit`` changed, as a diff (``edit_diff``); empty for other tools, and then
    left out of the record (older readers, and records made before it, have no such key)."""
    approval: str = ""
    """The user's answer when the call waited for approval; empty (and left out of the
    record, as ``diff``) when nobody was asked."""
    calls: list[ToolPart] = []
    """Tool calls made inside this one (a codemode script's), in order."""

    @model_serializer(mode="wrap")
    def _without_empty_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        record: dict[str, Any] = handler(self)
        for key in ("diff", "approval"):
            if not record.get(key):
                record.pop(key, None)
        return record


class NoticePart(_Record):
    type: Literal["notice"] = "notice"
    level: NoticeLevel
    text: str


class ErrorPart(_Record):
    type: Literal["error"] = "error"
    message: str


Part = Annotated[
    TextPart | ThinkingPart | ToolPart | NoticePart | ErrorPart, Field(discriminator="type")
]


class PlaceRecord(_Record):
    """Where the turn sat: its notebook cell, and its prompt in Pi's session tree."""

    cell_id: str | None = None
    entry_id: str | None = None
    """The prompt's entry in Pi's session."""
    parent_id: str | None = None
    """The entry it was asked after (None: the start, or not known)."""
    asked_again: bool = False
    """A cell run before, asked again where it was first asked."""
    after_count: int | None = None
    """The execution count of the cell whose answer it followed, as the page showed it."""


class UsageRecord(_Record):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0
    """US dollars, as Pi computes it from the model's prices."""


class WarmingRecord(UsageRecord):
    refreshes: int = 0
    """Idle prompt-cache refreshes Pi made since the previous cell (Pi >= 1)."""


class Transcript(_Record):
    """One turn, as saved in the notebook."""

    schema_version: Literal[1] = SCHEMA_VERSION
    pi_kernel_version: str = __version__
    pi_version: str | None = None
    provider: str | None = None
    model: str | None = None
    thinking_level: str | None = None
    """The level the turn was asked with."""
    message_levels: list[str] = []
    """The level each assistant message really used, in order (Pi >= 1 reports it)."""
    session_id: str | None = None
    session_file: str | None = None
    """The session file's name (not its path, which names the user's home)."""
    prompt: str
    prompt_cut: int = 0
    """Characters after ``prompt`` that were cut (see ``PROMPT_LIMIT``)."""
    blocks: list[Part] = []
    status: TurnStatus
    stop_reason: str | None = None
    errors: list[str] = []
    usage: UsageRecord = UsageRecord()
    cache_warming: WarmingRecord | None = None
    """What Pi spent keeping the prompt cache warm since the previous cell: not part of
    ``usage`` (no answer holds it), and still the user's cost."""
    started: datetime
    ended: datetime | None = None
    replayed_from: str | None = None
    """The cassette a replayed turn came from (its file name); None for a live turn."""
    place: PlaceRecord | None = None
    """Its cell and place in Pi's session; None (and left out of the record, so that older
    readers read it) when not known."""

    @model_serializer(mode="wrap")
    def _without_unknown_place(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        record: dict[str, Any] = handler(self)
        if record.get("place") is None:
            record.pop("place", None)
        return record

    @property
    def model_ref(self) -> str | None:
        return f"{self.provider}/{self.model}" if self.provider and self.model else None

    @property
    def text(self) -> str:
        """The answer: the text blocks, as ``Turn.text`` joins them."""
        return "\n\n".join(
            part.text.strip() for part in self.blocks if isinstance(part, TextPart)
        ).strip()

    def to_turn(self) -> Turn:
        """The turn this transcript records, finished, ready to render."""
        warming = self.cache_warming
        return Turn.restored(
            self.prompt,
            [_block(part) for part in self.blocks],
            status=self.status,
            error=self.errors[-1] if self.errors else None,
            provider=self.provider,
            model=self.model,
            thinking_level=self.thinking_level,
            message_levels=list(self.message_levels),
            stop_reason=self.stop_reason,
            usage=_tally(self.usage),
            cache_warming=None if warming is None else _tally(warming, warming.refreshes),
            started=self.started.timestamp(),
            ended=None if self.ended is None else self.ended.timestamp(),
            replayed_from=self.replayed_from,
            place=None if self.place is None else TurnPlace(**self.place.model_dump()),
        )


CUT_OFF_LABEL = "Cut off when the attempt failed (Pi retried):"
"""How a transcript records text that a failed, retried attempt had streamed."""


def transcript_of(
    turn: Turn,
    *,
    pi_version: str | None = None,
    session_id: str | None = None,
    session_file: str | None = None,
) -> Transcript:
    """The record of a finished turn (its model as the turn names it)."""
    errors = [b.message for b in turn.blocks if isinstance(b, ErrorBlock) and b.failed]
    if turn.error and turn.error not in errors:
        errors.append(turn.error)
    return Transcript(
        pi_version=pi_version,
        provider=turn.provider,
        model=turn.model,
        thinking_level=turn.thinking_level,
        message_levels=turn.message_levels,
        session_id=session_id,
        session_file=session_file.replace("\\", "/").rsplit("/", 1)[-1] if session_file else None,
        prompt=turn.prompt[:PROMPT_LIMIT],
        prompt_cut=max(0, len(turn.prompt) - PROMPT_LIMIT),
        blocks=[part for block in turn.blocks if (part := _part(block)) is not None],
        status=turn.status,
        stop_reason=turn.stop_reason,
        errors=errors,
        usage=UsageRecord(**_usage_fields(turn.usage)),
        cache_warming=_warming_record(turn.cache_warming),
        started=_time(turn.started),
        ended=_time(turn.ended) if turn.ended is not None else None,
        place=None if turn.place is None else PlaceRecord(**dataclasses.asdict(turn.place)),
    )


def _usage_fields(tally: UsageTally) -> dict[str, Any]:
    return {
        "input": tally.input,
        "output": tally.output,
        "cache_read": tally.cache_read,
        "cache_write": tally.cache_write,
        "cost": tally.cost,
    }


def _tally(record: UsageRecord, count: int = 0) -> UsageTally:
    return UsageTally(
        count, record.input, record.output, record.cache_read, record.cache_write, record.cost
    )


def _warming_record(warming: UsageTally | None) -> WarmingRecord | None:
    if warming is None or not warming.count:
        return None
    return WarmingRecord(refreshes=warming.count, **_usage_fields(warming))


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _part(block: Block) -> Part | None:
    if not block.visible:
        return None  # what the cell never showed (an empty step) is not recorded either
    if isinstance(block, TextBlock):
        if block.cut_off:  # shown, so recorded; but not the answer
            return NoticePart(level="warning", text=f"{CUT_OFF_LABEL} {block.text.strip()}")
        return TextPart(text=block.text)
    if isinstance(block, ThinkingBlock):
        return ThinkingPart(text=block.text, redacted=block.redacted)
    if isinstance(block, ToolBlock):
        return _tool_part(block)
    if isinstance(block, NoticeBlock):
        return NoticePart(level=block.level, text=block.text)
    if isinstance(block, ErrorBlock):
        if block.retry_notice is not None:
            return NoticePart(level="warning", text=block.retry_notice)
        return ErrorPart(message=block.message)
    return None


def _tool_part(block: ToolBlock) -> ToolPart:
    output, cut = output_tail(block.output)
    return ToolPart(
        call_id=block.call_id,
        name=block.name,
        arguments=block.arguments,
        output=output,
        state=block.state,
        is_error=block.state == "error",
        output_cut=block.output_cut + cut,
        duration_ms=block.duration_ms,
        diff=block.diff,
        approval=block.approval,
        calls=[_tool_part(call) for call in block.calls],
    )


def _tool_block(part: ToolPart, parent: ToolBlock | None = None) -> ToolBlock:
    block = ToolBlock(
        call_id=part.call_id,
        name=part.name,
        arguments=dict(part.arguments),
        output=part.output,
        output_cut=part.output_cut,
        state=part.state,
        duration_ms=part.duration_ms,
        diff=part.diff,
        approval=part.approval,
        parent=parent,
        done=True,
    )
    block.calls = [_tool_block(call, block) for call in part.calls]
    return block


def _block(part: Part) -> Block:
    block: Block
    if isinstance(part, TextPart):
        block = TextBlock(part.text)
    elif isinstance(part, ThinkingPart):
        block = ThinkingBlock(part.text, redacted=part.redacted)
    elif isinstance(part, ToolPart):
        block = _tool_block(part)
    elif isinstance(part, NoticePart):
        block = NoticeBlock(level=part.level, text=part.text)
    else:
        block = ErrorBlock(message=part.message)
    block.done = True
    block.touch()
    return block


def transcripts_in(outputs: Iterable[Mapping[str, Any]]) -> list[Transcript]:
    """The transcripts a cell's outputs carry (saved, or as a run received them), in order."""
    return [
        Transcript.model_validate(output["data"][MIMETYPE])
        for output in outputs
        if MIMETYPE in output.get("data", {})
    ]
