"""Parsing Pi's records: recorded real streams of both versions, and what newer Pi may add."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pi_kernel.rpc.protocol import (
    THINKING_LEVELS,
    AgentEnd,
    AssistantMessage,
    EntryAppended,
    ExtensionUIRequest,
    MessageUpdate,
    ModelInfo,
    Response,
    TextDelta,
    ToolCallEnd,
    ToolExecutionEnd,
    UnknownContent,
    UnknownEvent,
    UnknownStreamEvent,
    Usage,
    command,
    extension_ui_response,
    parse_record,
    thinking_levels_for,
)
from tests.support.pis import DATA

TRACES = DATA / "traces"
RECORDED = sorted(
    path for path in TRACES.glob("*/*.jsonl") if not path.name.endswith(".commands.jsonl")
)


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line]


@pytest.mark.parametrize("trace", RECORDED, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_recorded_record_parses_to_a_known_type(trace: Path):
    records = [parse_record(line) for line in lines_of(trace)]
    assert records
    assert not [record for record in records if isinstance(record, UnknownEvent)]
    for record in records:
        if isinstance(record, MessageUpdate):
            assert not isinstance(record.assistant_message_event, UnknownStreamEvent)


def test_legacy_message_update_snapshots_are_accepted_and_not_built():
    line = next(line for line in lines_of(TRACES / "073" / "text.jsonl") if b'"text_delta"' in line)
    assert b'"partial"' in line
    assert b'"message"' in line
    record = parse_record(line)
    assert isinstance(record, MessageUpdate)
    assert isinstance(record.assistant_message_event, TextDelta)
    assert record.assistant_message_event.delta
    assert not record.model_extra
    assert "partial" not in record.assistant_message_event.model_dump(by_alias=True)


def test_fields_read_in_snake_case_and_write_back_in_camel_case():
    record = parse_record(
        b'{"type":"tool_execution_end","toolCallId":"c1","toolName":"bash",'
        b'"result":{"content":[{"type":"text","text":"ok"}]},"isError":true,"durationMs":12}'
    )
    assert isinstance(record, ToolExecutionEnd)
    assert record.tool_call_id == "c1"
    assert record.is_error
    assert record.result is not None
    assert record.result.text == "ok"
    dumped = record.model_dump(by_alias=True)
    assert dumped["toolCallId"] == "c1"
    assert dumped["durationMs"] == 12  # a field newer Pi adds survives


def test_an_unknown_event_type_is_kept_not_fatal():
    record = parse_record(b'{"type":"brand_new_event","payload":{"x":1}}')
    assert isinstance(record, UnknownEvent)
    assert record.type == "brand_new_event"
    assert record.model_extra == {"payload": {"x": 1}}


def test_unknown_nested_kinds_fall_back_too():
    update = parse_record(
        b'{"type":"message_update","assistantMessageEvent":{"type":"audio_delta","contentIndex":3}}'
    )
    assert isinstance(update, MessageUpdate)
    assert isinstance(update.assistant_message_event, UnknownStreamEvent)
    end = parse_record(
        b'{"type":"agent_end","messages":[{"role":"assistant","content":[{"type":"hologram"}],'
        b'"stopReason":"stop"},{"role":"branchSummary","summary":"s"}]}'
    )
    assert isinstance(end, AgentEnd)
    assistant = end.messages[0]
    assert isinstance(assistant, AssistantMessage)
    assert isinstance(assistant.content[0], UnknownContent)
    assert end.messages[1].role == "branchSummary"


def test_text_with_line_separators_survives_parsing():
    text = "one\u2028two\u2029three"
    line = json.dumps(
        {"type": "message_update", "assistantMessageEvent": {"type": "text_delta", "delta": text}},
        ensure_ascii=False,
    ).encode()
    record = parse_record(line)
    assert isinstance(record, MessageUpdate)
    assert isinstance(record.assistant_message_event, TextDelta)
    assert record.assistant_message_event.delta == text


def test_responses_and_dialog_requests_parse_as_such():
    response = parse_record(
        b'{"type":"response","command":"parse","success":false,"error":"Failed to parse"}'
    )
    assert isinstance(response, Response)
    assert response.id is None
    dialog = parse_record(
        b'{"type":"extension_ui_request","id":"u1","method":"confirm","title":"Sure?"}'
    )
    assert isinstance(dialog, ExtensionUIRequest)
    assert dialog.needs_answer
    notice = parse_record(
        b'{"type":"extension_ui_request","id":"u2","method":"notify","message":"hi"}'
    )
    assert isinstance(notice, ExtensionUIRequest)
    assert not notice.needs_answer


def test_tool_call_end_carries_the_complete_call():
    line = next(
        line for line in lines_of(TRACES / "087" / "tool.jsonl") if b'"toolcall_end"' in line
    )
    record = parse_record(line)
    assert isinstance(record, MessageUpdate)
    event = record.assistant_message_event
    assert isinstance(event, ToolCallEnd)
    assert event.tool_call is not None
    assert event.tool_call.name == "bash"
    assert event.tool_call.arguments == {"command": "echo hello"}


def test_commands_leave_out_unset_fields():
    assert command("export_html", outputPath=None) == {"type": "export_html"}
    assert command("set_model", provider="p", modelId="m") == {
        "type": "set_model",
        "provider": "p",
        "modelId": "m",
    }
    assert extension_ui_response("u1", cancelled=True) == {
        "type": "extension_ui_response",
        "id": "u1",
        "cancelled": True,
    }
    assert extension_ui_response("u1", confirmed=False)["confirmed"] is False


def test_computed_thinking_levels_match_what_both_pi_versions_reported():
    observed = json.loads((TRACES / "073" / "thinking-levels.json").read_text())
    for entry in observed["models_json_models"]:
        model = ModelInfo.model_validate({**entry, "provider": "scripted"})
        legacy = observed["pi_0_73_1_levels_seen_by_cycling_from_off"][entry["id"]] or ["off"]
        current = observed["pi_0_87_1_get_available_thinking_levels"][entry["id"]]
        assert thinking_levels_for(model) == legacy, entry["id"]
        assert thinking_levels_for(model, known=THINKING_LEVELS) == current, entry["id"]


def test_what_a_summary_cost_is_read_from_its_entry_and_nothing_else_is():
    usage = {"input": 900, "output": 120, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 1020}
    usage["cost"] = {"input": 0.009, "output": 0.0012, "total": 0.0102}
    compaction = appended({"type": "compaction", "usage": usage})
    kind, read = compaction.summary_usage or ("", Usage())
    assert (kind, read.input, read.output, read.cost.total) == ("compaction", 900, 120, 0.0102)
    for entry in (
        {"type": "compaction"},  # a summary made by an extension, with no usage
        {"type": "compaction", "usage": {"input": "lots"}},  # a shape this client cannot read
        {"type": "message", "usage": usage},
    ):
        assert appended(entry).summary_usage is None


def appended(entry: dict[str, object]) -> EntryAppended:
    record = parse_record(json.dumps({"type": "entry_appended", "entry": entry}))
    assert isinstance(record, EntryAppended)
    return record
