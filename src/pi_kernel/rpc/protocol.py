"""Pydantic models of Pi's RPC records: commands we send, and what Pi writes back.

No I/O here.  Pi's docs (``docs/rpc-commands.md``, ``docs/json.md``,
``docs/rpc-extension-ui.md``, ``docs/message-types.md`` in the npm package) are the source.

Design choices:

* Fields are snake_case with camelCase aliases, so Python code reads like Python and the
  wire stays Pi's.
* Every model allows extra fields: newer Pi versions add fields (``willRetry``,
  ``durationMs``, ``disposition``), and a client that rejected them would break on upgrade.
* Unions are discriminated on ``type`` (or ``role`` for messages) by a callable that routes
  any tag we do not know to an ``Unknown*`` model, so a new event type never crashes a
  reader.  One module-level ``TypeAdapter`` per union.
* Legacy Pi (0.73) repeats the whole partial message in every ``message_update``
  (``message`` and ``assistantMessageEvent.partial``).  Those fields are accepted and
  deliberately not modelled: parsing them into objects would cost O(answer) per delta.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

THINKING_LEVELS: tuple[str, ...] = ("off", "minimal", "low", "medium", "high", "xhigh", "max")
"""Every thinking level Pi knows, in increasing order."""


class WireModel(BaseModel):
    """Base for records on the wire: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )


class LeanWireModel(WireModel):
    """A record whose unknown fields are skipped rather than kept.

    Used for the one hot record (``message_update``), where legacy Pi's redundant snapshot
    fields would otherwise be built into Python objects on every delta.
    """

    model_config = ConfigDict(extra="ignore")


def _tag(key: str, known: frozenset[str]) -> Any:
    # For cold unions (messages, content blocks).  The hot unions below use pydantic's
    # native tag lookup with a left-to-right fallback instead: no Python call per record.
    """A discriminator on ``key`` that names unknown tags ``"unknown"``."""

    def discriminate(value: Any) -> str:
        tag = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
        return tag if isinstance(tag, str) and tag in known else "unknown"

    return Discriminator(discriminate)


# --------------------------------------------------------------------------------------
# Content blocks and messages (docs/message-types.md)


class TextContent(WireModel):
    type: Literal["text"] = "text"
    text: str = ""


class ThinkingContent(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str = ""
    redacted: bool = False


class ToolCall(WireModel):
    type: Literal["toolCall"] = "toolCall"
    id: str
    name: str
    arguments: dict[str, Any] = {}


class ImageContent(WireModel):
    type: Literal["image"] = "image"
    data: str = ""
    mime_type: str = ""


class UnknownContent(WireModel):
    type: str = "unknown"


_CONTENT_TAGS = frozenset({"text", "thinking", "toolCall", "image"})
Content = Annotated[
    Annotated[TextContent, Tag("text")]
    | Annotated[ThinkingContent, Tag("thinking")]
    | Annotated[ToolCall, Tag("toolCall")]
    | Annotated[ImageContent, Tag("image")]
    | Annotated[UnknownContent, Tag("unknown")],
    _tag("type", _CONTENT_TAGS),
]


class Cost(WireModel):
    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    total: float = 0.0


class Usage(WireModel):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total_tokens: int = 0
    cost: Cost = Cost()


StopReason = str
"""``stop``, ``length``, ``toolUse``, ``error``, ``aborted``, ``pending``, ``deferred``, …"""


class UserMessage(WireModel):
    role: Literal["user"] = "user"
    content: str | list[Content] = ""
    timestamp: int | None = None

    @property
    def text(self) -> str:
        """The prompt's words: the text itself, or every text block in order."""
        if isinstance(self.content, str):
            return self.content
        return "".join(block.text for block in self.content if isinstance(block, TextContent))


class AssistantMessage(WireModel):
    role: Literal["assistant"] = "assistant"
    content: list[Content] = []
    api: str | None = None
    provider: str | None = None
    model: str | None = None
    usage: Usage = Usage()
    stop_reason: StopReason = "pending"
    error_message: str | None = None
    timestamp: int | None = None
    thinking_level: str | None = None
    """The level this message was really generated with (Pi >= 1)."""

    @property
    def text(self) -> str:
        """The visible answer: every text block, in order."""
        return "".join(block.text for block in self.content if isinstance(block, TextContent))

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [block for block in self.content if isinstance(block, ToolCall)]


class ToolResultMessage(WireModel):
    role: Literal["toolResult"] = "toolResult"
    tool_call_id: str
    tool_name: str
    content: list[Content] = []
    is_error: bool = False
    timestamp: int | None = None


class BashExecutionMessage(WireModel):
    role: Literal["bashExecution"] = "bashExecution"
    command: str = ""
    output: str = ""
    exit_code: int | None = None


class UnknownMessage(WireModel):
    """System, custom, summary and future roles: kept, not interpreted."""

    role: str = "unknown"


_ROLE_TAGS = frozenset({"user", "assistant", "toolResult", "bashExecution"})
AgentMessage = Annotated[
    Annotated[UserMessage, Tag("user")]
    | Annotated[AssistantMessage, Tag("assistant")]
    | Annotated[ToolResultMessage, Tag("toolResult")]
    | Annotated[BashExecutionMessage, Tag("bashExecution")]
    | Annotated[UnknownMessage, Tag("unknown")],
    _tag("role", _ROLE_TAGS),
]


class ToolResult(WireModel):
    """A tool's (partial or final) result: ``content`` blocks plus tool-specific details."""

    content: list[Content] = []
    details: Any = None

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content if isinstance(block, TextContent))


# --------------------------------------------------------------------------------------
# Streaming deltas inside message_update (docs/json.md "Reconstruct streaming messages")


class _IndexedEvent(LeanWireModel):
    content_index: int = 0


class StreamStart(LeanWireModel):
    type: Literal["start"] = "start"


class TextStart(_IndexedEvent):
    type: Literal["text_start"] = "text_start"


class TextDelta(_IndexedEvent):
    type: Literal["text_delta"] = "text_delta"
    delta: str = ""


class TextEnd(_IndexedEvent):
    type: Literal["text_end"] = "text_end"
    content: str = ""


class ThinkingStart(_IndexedEvent):
    type: Literal["thinking_start"] = "thinking_start"


class ThinkingDelta(_IndexedEvent):
    type: Literal["thinking_delta"] = "thinking_delta"
    delta: str = ""


class ThinkingEnd(_IndexedEvent):
    type: Literal["thinking_end"] = "thinking_end"
    content: str = ""


class ToolCallStart(_IndexedEvent):
    type: Literal["toolcall_start"] = "toolcall_start"
    id: str | None = None
    tool_name: str | None = None


class ToolCallDelta(_IndexedEvent):
    type: Literal["toolcall_delta"] = "toolcall_delta"
    delta: str = ""


class ToolCallEnd(_IndexedEvent):
    type: Literal["toolcall_end"] = "toolcall_end"
    tool_call: ToolCall | None = None


class StreamDone(LeanWireModel):
    type: Literal["done"] = "done"
    reason: str | None = None


class StreamError(LeanWireModel):
    type: Literal["error"] = "error"
    reason: str | None = None


class UnknownStreamEvent(LeanWireModel):
    type: str = "unknown"


_KnownStreamEvent = Annotated[
    StreamStart
    | TextStart
    | TextDelta
    | TextEnd
    | ThinkingStart
    | ThinkingDelta
    | ThinkingEnd
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | StreamDone
    | StreamError,
    Field(discriminator="type"),
]
AssistantMessageEvent = Annotated[
    _KnownStreamEvent | UnknownStreamEvent, Field(union_mode="left_to_right")
]


# --------------------------------------------------------------------------------------
# Session events (docs/json.md)


class AgentStart(WireModel):
    type: Literal["agent_start"] = "agent_start"


class AgentEnd(WireModel):
    type: Literal["agent_end"] = "agent_end"
    messages: list[AgentMessage] = []
    will_retry: bool | None = None
    """Since Pi 0.75.4; ``None`` on older Pi."""


class AgentSettled(WireModel):
    """Since Pi 0.80.4: Pi will do nothing more on its own for this run."""

    type: Literal["agent_settled"] = "agent_settled"
    aborted: bool | None = None


class TurnStart(WireModel):
    type: Literal["turn_start"] = "turn_start"


class TurnEnd(WireModel):
    type: Literal["turn_end"] = "turn_end"
    message: AgentMessage | None = None
    tool_results: list[AgentMessage] = []


class MessageStart(WireModel):
    type: Literal["message_start"] = "message_start"
    message: AgentMessage


class MessageUpdate(LeanWireModel):
    type: Literal["message_update"] = "message_update"
    assistant_message_event: AssistantMessageEvent
    usage: Usage | None = None


class MessageEnd(WireModel):
    type: Literal["message_end"] = "message_end"
    message: AgentMessage


class _ToolExecution(WireModel):
    tool_call_id: str
    tool_name: str
    parent_tool_call_id: str | None = None
    """The call this one was made inside (a codemode script's tool call; Pi >= 1)."""


class ToolExecutionStart(_ToolExecution):
    type: Literal["tool_execution_start"] = "tool_execution_start"
    args: Any = None


class ToolExecutionUpdate(_ToolExecution):
    type: Literal["tool_execution_update"] = "tool_execution_update"
    args: Any = None
    partial_result: ToolResult | None = None


class ToolExecutionEnd(_ToolExecution):
    type: Literal["tool_execution_end"] = "tool_execution_end"
    result: ToolResult | None = None
    is_error: bool = False
    duration_ms: float | None = None
    """How long the tool's own work took (Pi >= 1); None when it did not run."""


class QueueUpdate(WireModel):
    type: Literal["queue_update"] = "queue_update"
    steering: list[Any] = []
    follow_up: list[Any] = []


CACHE_WARM = "cache_warm"
"""The ``kind`` of a usage entry that records an idle prompt-cache refresh."""


class UsageEntry(WireModel):
    """A session entry recording usage outside any assistant message (Pi >= 1), such as
    an idle prompt-cache refresh (``kind`` ``cache_warm``)."""

    type: Literal["usage"] = "usage"
    kind: str = ""
    provider: str | None = None
    model: str | None = None
    usage: Usage = Usage()


class EntryAppended(WireModel):
    type: Literal["entry_appended"] = "entry_appended"
    entry: Any = None

    @property
    def summary_usage(self) -> tuple[str, Usage] | None:
        """The entry's type and usage when it is a summary Pi asked a model for (a
        ``compaction`` or ``branch_summary`` entry that carries ``usage``)."""
        if not isinstance(self.entry, dict):
            return None
        kind, usage = self.entry.get("type"), self.entry.get("usage")
        if kind not in ("compaction", "branch_summary") or not isinstance(usage, dict):
            return None
        try:
            return str(kind), Usage.model_validate(usage)
        except ValidationError:  # a shape this client does not know: not a cost it can count
            return None

    @property
    def usage_entry(self) -> UsageEntry | None:
        """The entry, when it is a usage record; None for anything else."""
        if isinstance(self.entry, dict) and self.entry.get("type") == "usage":
            return UsageEntry.model_validate(self.entry)
        return None


class SessionInfoChanged(WireModel):
    type: Literal["session_info_changed"] = "session_info_changed"
    name: str | None = None


class ThinkingLevelChanged(WireModel):
    type: Literal["thinking_level_changed"] = "thinking_level_changed"
    level: str


class CompactionStart(WireModel):
    type: Literal["compaction_start"] = "compaction_start"
    reason: str | None = None


class CompactionEnd(WireModel):
    type: Literal["compaction_end"] = "compaction_end"
    reason: str | None = None
    result: Any = None
    aborted: bool = False
    will_retry: bool = False
    error_message: str | None = None


class AutoRetryStart(WireModel):
    type: Literal["auto_retry_start"] = "auto_retry_start"
    attempt: int = 0
    max_attempts: int = 0
    delay_ms: int = 0
    error_message: str | None = None


class AutoRetryEnd(WireModel):
    type: Literal["auto_retry_end"] = "auto_retry_end"
    success: bool = False
    attempt: int = 0
    final_error: str | None = None


class BashExecutionUpdate(WireModel):
    type: Literal["bash_execution_update"] = "bash_execution_update"
    id: str | None = None
    delta: str = ""


class ExtensionError(WireModel):
    type: Literal["extension_error"] = "extension_error"
    extension_path: str | None = None
    event: str | None = None
    error: str = ""


class UnknownEvent(WireModel):
    """An event type this client does not know: kept whole, never fatal."""

    type: str = "unknown"


# --------------------------------------------------------------------------------------
# Records that are not session events: responses and extension UI requests


class Response(WireModel):
    """Pi's answer to a command.  ``id`` is missing for parse errors."""

    type: Literal["response"] = "response"
    id: str | None = None
    command: str = ""
    success: bool
    error: str | None = None
    data: Any = None


DIALOG_METHODS = frozenset({"select", "confirm", "input", "editor"})
"""Extension UI methods that block Pi until the client answers."""


class ExtensionUIRequest(WireModel):
    """``select``/``confirm``/``input``/``editor`` need an answer; the rest are notices."""

    type: Literal["extension_ui_request"] = "extension_ui_request"
    id: str
    method: str
    title: str | None = None
    message: str | None = None
    options: list[str] | None = None
    placeholder: str | None = None
    prefill: str | None = None
    timeout: int | None = None
    notify_type: str | None = None

    @property
    def needs_answer(self) -> bool:
        return self.method in DIALOG_METHODS


_KnownEvent = (
    AgentStart
    | AgentEnd
    | AgentSettled
    | TurnStart
    | TurnEnd
    | MessageStart
    | MessageUpdate
    | MessageEnd
    | ToolExecutionStart
    | ToolExecutionUpdate
    | ToolExecutionEnd
    | QueueUpdate
    | EntryAppended
    | SessionInfoChanged
    | ThinkingLevelChanged
    | CompactionStart
    | CompactionEnd
    | AutoRetryStart
    | AutoRetryEnd
    | BashExecutionUpdate
    | ExtensionError
)
Event = _KnownEvent | UnknownEvent
"""A session event: what Pi tells every listener about the run."""

_KnownRecord = Annotated[
    Response | ExtensionUIRequest | _KnownEvent,
    Field(discriminator="type"),
]
Record = Annotated[_KnownRecord | UnknownEvent, Field(union_mode="left_to_right")]
"""Anything Pi writes on stdout."""

RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


def parse_record(line: bytes | str) -> Record:
    """Parse one stdout line.  Raises ``pydantic.ValidationError`` for non-JSON or non-objects."""
    return RECORD_ADAPTER.validate_json(line)


# --------------------------------------------------------------------------------------
# Response payloads


class ModelCost(WireModel):
    """US dollars per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0


class ModelInfo(WireModel):
    """A model as Pi describes it (``get_available_models``, ``get_state.model``)."""

    id: str
    provider: str
    name: str | None = None
    api: str | None = None
    reasoning: bool = False
    input: list[str] = []
    context_window: int | None = None
    max_tokens: int | None = None
    cost: ModelCost | None = None
    thinking_level_map: dict[str, str | None] | None = None

    @property
    def ref(self) -> str:
        """``provider/id``, the way people and ``--model`` name a model."""
        return f"{self.provider}/{self.id}"


class SessionState(WireModel):
    """``get_state``'s data."""

    model: ModelInfo | None = None
    thinking_level: str = "off"
    is_streaming: bool = False
    is_compacting: bool = False
    session_file: str | None = None
    session_id: str | None = None
    session_name: str | None = None
    message_count: int = 0
    pending_message_count: int = 0

    @property
    def model_ref(self) -> str | None:
        """``provider/id`` of the current model; None when Pi has none."""
        return self.model.ref if self.model else None


class SessionEntry(WireModel):
    """One entry of Pi's session tree, as far as pi-kernel reads it (``get_entries``):
    every entry has an id and a parent; a message says whose it is; a label names another
    entry."""

    type: str
    id: str
    parent_id: str | None = None
    message: dict[str, Any] | None = None
    target_id: str | None = None
    """A ``label`` entry's entry."""
    label: str | None = None

    @property
    def is_prompt(self) -> bool:
        """A user's message: the prompt of a turn."""
        return self.type == "message" and (self.message or {}).get("role") == "user"


class SessionEntries(WireModel):
    """``get_entries``'s data: entries in append order, and where the next prompt attaches."""

    entries: list[SessionEntry] = []
    leaf_id: str | None = None


class TokenStats(WireModel):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total: int = 0


class ContextUsage(WireModel):
    """How much of the model's context window the conversation fills (Pi's estimate)."""

    tokens: int | None = None
    """None right after a compaction, until the next answer reports real usage."""
    context_window: int = 0
    percent: float | None = None


class SessionStats(WireModel):
    """``get_session_stats``'s data."""

    session_file: str | None = None
    session_id: str | None = None
    user_messages: int = 0
    assistant_messages: int = 0
    tool_calls: int = 0
    total_messages: int = 0
    tokens: TokenStats = TokenStats()
    cost: float = 0.0
    context_usage: ContextUsage | None = None


class SlashCommand(WireModel):
    """One entry of ``get_commands``: run it by prompting ``/name``."""

    name: str
    description: str | None = None
    source: str | None = None


class SessionSwitch(WireModel):
    """``new_session``/``switch_session``'s data: an extension may cancel the switch."""

    cancelled: bool = False


MODELS_ADAPTER: TypeAdapter[list[ModelInfo]] = TypeAdapter(list[ModelInfo])
COMMANDS_ADAPTER: TypeAdapter[list[SlashCommand]] = TypeAdapter(list[SlashCommand])


# --------------------------------------------------------------------------------------
# Commands we send (docs/rpc-commands.md).  Plain dicts keep the hot path cheap; these
# helpers keep the wire names in one place.


def command(type_: str, **fields: Any) -> dict[str, Any]:
    """A command record; ``None`` fields are left out (Pi treats absent and null alike)."""
    record: dict[str, Any] = {"type": type_}
    record.update({key: value for key, value in fields.items() if value is not None})
    return record


def extension_ui_response(
    request_id: str,
    *,
    value: str | None = None,
    confirmed: bool | None = None,
    cancelled: bool = False,
) -> dict[str, Any]:
    """The answer to a dialog request; it has no response of its own."""
    if cancelled:
        return {"type": "extension_ui_response", "id": request_id, "cancelled": True}
    if confirmed is not None:
        return {"type": "extension_ui_response", "id": request_id, "confirmed": confirmed}
    return {"type": "extension_ui_response", "id": request_id, "value": value}


LEGACY_THINKING_LEVELS: tuple[str, ...] = THINKING_LEVELS[:6]
"""Pi 0.73 knows no ``max`` level (``set_thinking_level max`` falls back to ``off`` there)."""

_OPT_IN_LEVELS = frozenset({"xhigh", "max"})


def thinking_levels_for(
    model: ModelInfo, *, known: tuple[str, ...] = LEGACY_THINKING_LEVELS
) -> list[str]:
    """The thinking levels Pi offers for ``model``, for Pi versions that cannot tell us.

    Pi's own rule (``pi-ai`` ``models.js``): a model without reasoning has only ``off``; a
    reasoning model has every known level except that ``xhigh`` and ``max`` need a non-null
    entry in its ``thinkingLevelMap``, and a null entry removes a level.
    """
    if not model.reasoning:
        return ["off"]
    mapping = model.thinking_level_map or {}
    return [
        level
        for level in known
        if (
            mapping.get(level) is not None
            if level in _OPT_IN_LEVELS
            else level not in mapping or mapping[level] is not None
        )
    ]
