"""One notebook turn: Pi's events folded into an ordered list of blocks.

A turn is what one cell shows: the assistant's text segments, its thinking, each tool call
with its output, and one-line notices (retries, compaction, dialogs), in the order they
happened.  The rules come from how Pi really streams (the recorded sessions in
``tests/data/traces/`` show each one):

* An assistant message is rebuilt from its deltas, keyed by ``contentIndex``; its
  ``message_start`` content is ignored (0.87 already puts the first delta there, and the
  same delta follows as an update) and ``*_end`` / ``message_end`` replace what was
  rebuilt, because they are authoritative.
* A step whose content is only tool calls has no text block, so nothing empty is shown.
* Text -> tool -> text stays as separate blocks, in order.
* A model error is an error block with Pi's message; when Pi retries it, the failed
  attempt's blocks give way to a one-line notice.
* ``partialResult`` of a tool replaces its output; parallel tools finish in any order.
* A tool called inside another tool (a codemode script's calls, ``parentToolCallId``) is
  drawn inside its parent's block, not beside it.

No I/O and no IPython: the renderer reads ``blocks`` and each block's ``version``.  A turn
has one writer, itself: callers give it events (``apply``), what it was asked with, how it
ended (``finish``) and the cache warming before it; a transcript rebuilds one through
``Turn.restored``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from .blocks import (
    Block,
    ErrorBlock,
    NoticeBlock,
    NoticeLevel,
    TextBlock,
    ThinkingBlock,
    ToolBlock,
    edit_diff,
)
from .conversation import Placement
from .rpc.feed import ClientEvent, ClientNotice
from .rpc.protocol import (
    AgentEnd,
    AssistantMessage,
    AutoRetryEnd,
    AutoRetryStart,
    CompactionEnd,
    CompactionStart,
    ExtensionError,
    ExtensionUIRequest,
    MessageEnd,
    MessageStart,
    MessageUpdate,
    TextContent,
    TextDelta,
    TextEnd,
    TextStart,
    ThinkingContent,
    ThinkingDelta,
    ThinkingEnd,
    ThinkingStart,
    ToolCall,
    ToolCallEnd,
    ToolCallStart,
    ToolExecutionEnd,
    ToolExecutionStart,
    ToolExecutionUpdate,
)
from .rpc.run import RunOutcome
from .rpc.usage import UsageTally


def tokens_text(input_tokens: int, output_tokens: int) -> str:
    """``N in / M out tokens``; or, when both are zero, that none were reported (a turn that
    never reached the model, a provider whose stream carries no usage)."""
    if not input_tokens and not output_tokens:
        return "tokens not reported"
    return f"{input_tokens:,} in / {output_tokens:,} out tokens"


def _interrupt_unfinished(tool: ToolBlock) -> None:
    """A tool (or a call inside it) still pending or running when its turn ended."""
    for call in tool.calls:
        _interrupt_unfinished(call)
    if tool.state in ("pending", "running"):
        tool.state = "interrupted"
        tool.done = True
        tool.touch()


_B = TypeVar("_B", bound=Block)

TurnStatus = Literal["running", "completed", "failed", "aborted", "interrupted"]


@dataclass(eq=False)
class _Message:
    """The blocks of the assistant message being streamed, by ``contentIndex``."""

    blocks: dict[int, Block] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnPlace:
    """Where a turn sat: its notebook cell, and its prompt in Pi's session tree."""

    cell_id: str | None = None
    entry_id: str | None = None
    """The prompt's entry in Pi's session."""
    parent_id: str | None = None
    """The entry it was asked after (None: the start of the conversation)."""
    asked_again: bool = False
    """The cell was run before, and asked again where it was first asked."""
    after_count: int | None = None
    """The execution count of the cell whose answer it followed, when it followed one."""

    def note(self) -> str | None:
        """What the footer says of a turn asked again: where, and that nothing is lost."""
        if not self.asked_again:
            return None
        where = f"after In [{self.after_count}]" if self.after_count else "from the start"
        return f"asked again {where}, the earlier answer kept in Pi's session"


class Turn:
    """Fold events with ``apply``; read ``blocks`` (in order) and the turn's facts."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.blocks: list[Block] = []
        self.status: TurnStatus = "running"
        self.error: str | None = None
        self.usage = UsageTally()
        """Tokens and cost summed over the turn's assistant messages (``count`` of them)."""
        self.cache_warming: UsageTally | None = None
        """Idle prompt-cache refreshes Pi made since the previous cell (their cost is the
        user's too, and no answer's usage holds it)."""
        self.provider: str | None = None
        self.model: str | None = None
        self.thinking_level: str | None = None
        """The level the turn was asked with."""
        self.message_levels: list[str] = []
        """The level each assistant message really used, in order (Pi >= 1 says)."""
        self.stop_reason: str | None = None
        self.started = time.time()
        self.ended: float | None = None
        self._clock = time.monotonic()
        self.elapsed: float | None = None
        """Seconds the turn took, set when it finishes."""
        self.replayed_from: str | None = None
        """The cassette a replayed turn was read from, instead of asking Pi."""
        self.place: TurnPlace | None = None
        """Its cell and its place in Pi's session tree, where known."""
        self._message: _Message | None = None
        self._last_message_blocks: list[Block] = []
        self._tools: dict[str, ToolBlock] = {}

    @classmethod
    def restored(
        cls,
        prompt: str,
        blocks: list[Block],
        *,
        status: TurnStatus,
        error: str | None,
        provider: str | None,
        model: str | None,
        thinking_level: str | None,
        message_levels: list[str],
        stop_reason: str | None,
        usage: UsageTally,
        cache_warming: UsageTally | None,
        started: float,
        ended: float | None,
        replayed_from: str | None,
        place: TurnPlace | None = None,
    ) -> Turn:
        """A finished turn as a record kept it (a transcript replayed or resumed)."""
        turn = cls(prompt)
        turn.blocks = blocks
        turn.status, turn.error = status, error
        turn.provider, turn.model, turn.thinking_level = provider, model, thinking_level
        turn.message_levels = message_levels
        turn.stop_reason = stop_reason
        turn.usage, turn.cache_warming = usage, cache_warming
        turn.started, turn.ended = started, ended
        turn.elapsed = None if ended is None else ended - started
        turn.replayed_from = replayed_from
        turn.place = place
        return turn

    # -- reading ---------------------------------------------------------------------------

    @property
    def visible_blocks(self) -> list[Block]:
        return [block for block in self.blocks if block.visible]

    @property
    def text(self) -> str:
        """The answer: every text block, in order, separated by blank lines."""
        return "\n\n".join(
            block.text.strip()
            for block in self.blocks
            if isinstance(block, TextBlock) and not block.cut_off
        ).strip()

    @property
    def duration(self) -> float:
        """Seconds from the start to the end (or to now, while running)."""
        if self.elapsed is not None:
            return self.elapsed
        return time.monotonic() - self._clock

    # -- folding ---------------------------------------------------------------------------

    def apply(self, event: ClientEvent) -> None:
        """Fold one event in.  Events this turn does not show are ignored."""
        if isinstance(event, MessageUpdate):
            self._on_update(event)
        elif isinstance(event, MessageStart):
            if isinstance(event.message, AssistantMessage):
                self._message = _Message()
        elif isinstance(event, MessageEnd):
            if isinstance(event.message, AssistantMessage):
                self._on_assistant_end(event.message)
        elif isinstance(event, ToolExecutionStart):
            tool = self._tool(event.tool_call_id, event.tool_name, event.parent_tool_call_id)
            if isinstance(event.args, dict) and not tool.arguments:
                tool.arguments = event.args
            tool.state = "running"
            tool.touch()
        elif isinstance(event, ToolExecutionUpdate):
            tool = self._tool(event.tool_call_id, event.tool_name, event.parent_tool_call_id)
            if event.partial_result is not None:
                tool.output = event.partial_result.text
                tool.touch()
        elif isinstance(event, ToolExecutionEnd):
            tool = self._tool(event.tool_call_id, event.tool_name, event.parent_tool_call_id)
            if event.result is not None:
                tool.output = event.result.text
                if tool.name == "edit":
                    tool.diff = edit_diff(event.result.details)
            tool.state = "error" if event.is_error else "ok"
            tool.duration_ms = event.duration_ms
            tool.done = True
            tool.touch()
        elif isinstance(event, AutoRetryStart):
            self._on_retry(event)
        elif isinstance(event, AutoRetryEnd):
            if not event.success and event.final_error:
                self._on_retries_exhausted(event.final_error)
        elif isinstance(event, CompactionStart):
            self._notice("info", f"Compacting the conversation ({event.reason or 'auto'})…")
        elif isinstance(event, CompactionEnd):
            self._on_compaction_end(event)
        elif isinstance(event, ClientNotice):
            self._notice(event.level, event.message)
        elif isinstance(event, ExtensionUIRequest):
            if event.method == "notify" and event.message:
                level: NoticeLevel = "info"
                if event.notify_type == "warning":
                    level = "warning"
                elif event.notify_type == "error":
                    level = "error"
                self._notice(level, event.message)
        elif isinstance(event, ExtensionError):
            self._notice("error", f"Extension error ({event.event}): {event.error}")
        elif isinstance(event, AgentEnd):
            self._message = None

    def asked_with(self, model_ref: str | None, level: str | None) -> None:
        """What the turn was asked with.  Pi names the model at the end of its first
        message; a turn without one (interrupted or failed early, an extension command) still
        ran on the model it was asked of, and its footer and transcript say so."""
        self.thinking_level = level
        if self.model is None and model_ref and "/" in model_ref:
            self.provider, _, self.model = model_ref.partition("/")

    def tool_called(self, call_id: str, name: str, arguments: dict[str, object]) -> ToolBlock:
        """The block of a call the kernel was asked to approve or run: the one Pi's events
        made, or a new one when the call outran its ``tool_execution_start`` (the kernel
        tools' socket and Pi's stdout are two roads), which later events then fill in.  A
        call made inside another (codemode's ``parent/1``) goes inside its parent."""
        parent = call_id.rpartition("/")[0]
        tool = self._tool(call_id, name, parent or None)
        if not tool.arguments and arguments:
            tool.arguments = arguments
            tool.touch()
        return tool

    def approval_answered(self, call_id: str, answer: str) -> None:
        """What the user answered about a call that waited for approval (see
        ``ToolBlock.approval``); its block must exist (``tool_called``)."""
        tool = self._tools[call_id]
        tool.approval = answer
        tool.touch()

    def count_cache_warming(self, tally: UsageTally | None) -> None:
        """Pi's idle prompt-cache refreshes since the previous cell, shown with this turn."""
        self.cache_warming = tally

    def finish(
        self,
        outcome: RunOutcome | None,
        *,
        interrupted: bool = False,
        stopped: str | None = None,
        error: str | None = None,
        level: str | None = None,
    ) -> None:
        """Close the turn: mark open blocks done and record how it ended (``stopped``: why
        the notebook aborted it, as a budget does; ``error``: why it failed outside Pi's
        stream; ``level``: the thinking level Pi says it ran with)."""
        self.ended = time.time()
        self.elapsed = time.monotonic() - self._clock
        if error is not None:
            self.error = error
        if level is not None:
            self.thinking_level = level
        if interrupted:
            self.status = "interrupted"
        elif stopped is not None:
            self.status = "aborted"
        elif outcome is None:
            self.status = "failed"
        else:
            self.status = outcome.status
            if outcome.status == "failed" and outcome.error:
                self.error = outcome.error
                if not any(isinstance(b, ErrorBlock) and b.failed for b in self.blocks):
                    self._add(ErrorBlock(message=outcome.error))
            if outcome.handled_without_run and not self.visible_blocks:
                # Never a silent empty "completed": say that no model was asked.
                self._notice(
                    "info",
                    "Pi asked no model for this prompt: an extension command or input handler "
                    "took it, and showed nothing.",
                )
        for block in self.blocks:
            if isinstance(block, ToolBlock):
                _interrupt_unfinished(block)
            if not block.done:
                block.done = True
                block.touch()
        if interrupted:
            self._notice("warning", "Interrupted: Pi was asked to stop this turn.", done=True)
        elif stopped is not None:
            self._notice("warning", stopped, done=True)

    # -- internals -------------------------------------------------------------------------

    def _add(self, block: Block) -> Block:
        block.touch()
        self.blocks.append(block)
        return block

    def _notice(self, level: NoticeLevel, text: str, *, done: bool = True) -> None:
        self._add(NoticeBlock(level=level, text=text, done=done))

    def _tool(
        self, call_id: str, name: str | None = None, parent_id: str | None = None
    ) -> ToolBlock:
        tool = self._tools.get(call_id)
        if tool is None:
            tool = ToolBlock(call_id=call_id, name=name or "tool")
            self._tools[call_id] = tool
            parent = self._tools.get(parent_id) if parent_id else None
            if parent is not None:
                tool.parent = parent
                parent.calls.append(tool)
                tool.touch()
            else:
                self._add(tool)
        elif name and tool.name == "tool":
            tool.name = name
        return tool

    def _indexed(self, index: int, kind: type[_B]) -> _B:
        """The block at ``contentIndex`` of the current message, created on first use."""
        if self._message is None:
            self._message = _Message()
        block = self._message.blocks.get(index)
        if not isinstance(block, kind):
            block = kind()
            self._add(block)
            self._message.blocks[index] = block
        return block

    def _on_update(self, event: MessageUpdate) -> None:
        delta = event.assistant_message_event
        index = getattr(delta, "content_index", 0)
        if isinstance(delta, TextStart | ThinkingStart):
            self._indexed(index, TextBlock if isinstance(delta, TextStart) else ThinkingBlock)
        elif isinstance(delta, TextDelta | ThinkingDelta):
            kind: type[TextBlock | ThinkingBlock]
            kind = TextBlock if isinstance(delta, TextDelta) else ThinkingBlock
            block = self._indexed(index, kind)
            block.append(delta.delta)
            block.touch()
        elif isinstance(delta, TextEnd | ThinkingEnd):
            kind = TextBlock if isinstance(delta, TextEnd) else ThinkingBlock
            block = self._indexed(index, kind)
            block.text = delta.content
            block.done = True
            block.touch()
        elif isinstance(delta, ToolCallStart):
            # Pi 0.87 names the call here; 0.73 only at toolcall_end.
            if delta.id:
                self._bind_tool(index, delta.id, delta.tool_name)
        elif isinstance(delta, ToolCallEnd) and delta.tool_call is not None:
            call = delta.tool_call
            tool = self._bind_tool(index, call.id, call.name)
            tool.arguments = call.arguments
            tool.touch()

    def _bind_tool(self, index: int, call_id: str, name: str | None) -> ToolBlock:
        tool = self._tool(call_id, name)
        if self._message is None:
            self._message = _Message()
        self._message.blocks[index] = tool
        return tool

    def _on_assistant_end(self, message: AssistantMessage) -> None:
        self.provider = message.provider or self.provider
        self.model = message.model or self.model
        self.stop_reason = message.stop_reason
        if message.thinking_level is not None:
            self.message_levels.append(message.thinking_level)
        self.usage.add(message.usage)
        current = self._message = self._message or _Message()
        for index, content in enumerate(message.content):
            if isinstance(content, TextContent):
                self._indexed(index, TextBlock).text = content.text
            elif isinstance(content, ThinkingContent):
                thinking = self._indexed(index, ThinkingBlock)
                thinking.text = content.thinking
                thinking.redacted = content.redacted
            elif isinstance(content, ToolCall):
                tool = self._tool(content.id, content.name)
                tool.arguments = content.arguments
                current.blocks[index] = tool
        for block in current.blocks.values():
            if not isinstance(block, ToolBlock) and not block.done:
                block.done = True
                block.touch()
        self._last_message_blocks = list(current.blocks.values())
        if message.stop_reason == "error":
            error = ErrorBlock(message=message.error_message or "The model returned an error.")
            error.done = True
            self._add(error)
            self._last_message_blocks.append(error)
        self._message = None

    def _on_retry(self, event: AutoRetryStart) -> None:
        # Pi throws the failed attempt away and asks again.  What the cell showed of its text
        # stays (marked cut off, out of the answer); its error becomes the retry notice, which
        # names the same reason.
        kept = False
        error: ErrorBlock | None = None
        for block in self._last_message_blocks:
            if isinstance(block, TextBlock) and block.visible:
                block.cut_off = kept = True
                block.touch()
            elif isinstance(block, ErrorBlock) and block in self.blocks:
                error = block
            elif block in self.blocks and not isinstance(block, ToolBlock | ThinkingBlock):
                self.blocks.remove(block)
        self._last_message_blocks = []
        reason = event.error_message or "a provider error"
        seconds = event.delay_ms / 1000
        notice = (
            f"Retrying after {reason} (attempt {event.attempt}/{event.max_attempts}, "
            f"in {seconds:g} s)" + ("; the text above was cut off" if kept else "")
        )
        if error is not None:
            error.retry_notice = notice
            error.restate()
        else:
            self._notice("warning", notice)

    def _on_retries_exhausted(self, final_error: str) -> None:
        message = f"Gave up retrying: {final_error}"
        for block in self._last_message_blocks:
            if isinstance(block, ErrorBlock):  # the last attempt's error: say it once
                block.message = message
                block.touch()
                return
        self._add(ErrorBlock(message=message, done=True))

    def _on_compaction_end(self, event: CompactionEnd) -> None:
        if event.aborted:
            self._notice("warning", "Compaction was aborted.")
        elif event.error_message:
            self._notice("error", f"Compaction failed: {event.error_message}")
        else:
            self._notice("info", "Compacted the conversation.")


@dataclass
class TurnResult:
    """How a prompt ended, and with which settings it ran."""

    outcome: RunOutcome
    model: str | None
    thinking_level: str | None
    session_id: str | None = None
    session_file: str | None = None
    placement: Placement | None = None
    """Where the turn was asked when the conversation follows the notebook's cells."""
    prompt_entry: str | None = None
    """The prompt's entry in Pi's session tree (when the conversation follows the cells)."""
    linear: str | None = None
    """Why the conversation could not follow the notebook's cells with this Pi (None: it
    did, or was not asked to)."""
    follow_problem: str | None = None
    """What went wrong labelling the turn in Pi's tree (the answer itself is whole)."""
