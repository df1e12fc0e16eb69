"""The transcript record, cassettes and redaction, without Pi."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pi_kernel.agent_dir import find_session
from pi_kernel.blocks import ErrorBlock, NoticeBlock, TextBlock, ThinkingBlock, ToolBlock
from pi_kernel.errors import CassetteError, PiSessionNotFound
from pi_kernel.records.cassette import Cassettes, Player, Recorder
from pi_kernel.records.export import to_markdown, write_file
from pi_kernel.records.redaction import REDACTED, redact, secret_values
from pi_kernel.transcript import (
    PROMPT_LIMIT,
    TOOL_OUTPUT_LIMIT,
    ToolPart,
    Transcript,
    cut_marker,
    transcript_of,
)
from pi_kernel.turn import Turn
from pi_magics.render import tool_bundle
from tests.support.html_safety import PAYLOADS, active_content


def finished_turn(output: str = "hello") -> Turn:
    turn = Turn("Run it.")
    tool = ToolBlock(call_id="c1", name="bash", arguments={"command": "echo hi"}, output=output)
    tool.state = "ok"
    turn.blocks = [TextBlock("   "), tool, NoticeBlock(text="Retrying"), TextBlock("Done.")]
    turn.provider, turn.model, turn.thinking_level = "scripted", "plain", "off"
    turn.finish(None)
    turn.status = "completed"
    return turn


def test_a_turn_round_trips_through_its_transcript():
    transcript = transcript_of(finished_turn(), session_file="/home/ada/.pi/s/2026_abc.jsonl")
    assert transcript.session_file == "2026_abc.jsonl"
    assert [part.type for part in transcript.blocks] == ["tool", "notice", "text"]  # no blank
    again = Transcript.model_validate_json(transcript.model_dump_json())
    assert again == transcript
    rebuilt = transcript_of(again.to_turn(), session_file=transcript.session_file)
    assert rebuilt.model_dump(exclude={"ended"}) == transcript.model_dump(exclude={"ended"})


def test_a_long_tool_output_keeps_its_end_as_the_cell_shows_it_and_counts_the_cut():
    output = "x" * 1234 + "y" * TOOL_OUTPUT_LIMIT
    turn = finished_turn(output)
    transcript = transcript_of(turn)
    [tool] = [part for part in transcript.blocks if isinstance(part, ToolPart)]
    assert tool.output_cut == 1234
    assert tool.output == "y" * TOOL_OUTPUT_LIMIT
    [shown] = [block for block in turn.blocks if isinstance(block, ToolBlock)]
    assert "… 1,234 more characters\n    yyy" in tool_bundle(shown)["text/plain"]
    [rebuilt] = [block for block in transcript.to_turn().blocks if isinstance(block, ToolBlock)]
    assert tool_bundle(rebuilt)["text/plain"] == tool_bundle(shown)["text/plain"]
    assert cut_marker(1234) in to_markdown([transcript])


def test_an_unknown_schema_version_is_refused():
    data = json.loads(transcript_of(finished_turn()).model_dump_json())
    data["schema_version"] = 2
    with pytest.raises(ValueError, match="schema_version"):
        Transcript.model_validate(data)


def test_secrets_come_from_the_environment_and_the_agent_dir(tmp_path: Path):
    agent = tmp_path / "agent"
    agent.mkdir()
    models = {
        "providers": {
            "a": {"apiKey": "literal-key-123", "headers": {"X-Auth": "$HEADER_VALUE"}},
            "b": {"apiKey": "PLAIN_NAME_VAR"},
            "c": {"apiKey": "!pass show key"},
        }
    }
    (agent / "models.json").write_text(json.dumps(models))
    (agent / "auth.json").write_text(json.dumps({"x": {"type": "api_key", "key": "auth-json-key"}}))
    env = {
        "PI_CODING_AGENT_DIR": str(agent),
        "OPENAI_API_KEY": "env-openai-key",
        "HEADER_VALUE": "header-secret-1",
        "PLAIN_NAME_VAR": "named-var-secret",
        "PATH": "/usr/bin:/bin",
        "SHORT_TOKEN": "abc",
    }
    found = secret_values(env)
    assert found == {
        "literal-key-123",
        "header-secret-1",
        "named-var-secret",
        "auth-json-key",
        "env-openai-key",
    }
    data = {"a": ["key=env-openai-key;", {"b": "literal-key-123-and-more"}], "n": 3}
    assert redact(data, found) == {"a": [f"key={REDACTED};", {"b": f"{REDACTED}-and-more"}], "n": 3}


def test_a_cassette_replays_in_order_and_names_a_mismatch(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    recorder = Recorder(path)
    recorder.write("Run it.", "scripted/plain", "off", transcript_of(finished_turn()))
    recorder.close()
    player = Player(path)
    with pytest.raises(CassetteError, match=r"asks 'Run it\.' of scripted/deep"):
        player.take("Run it.", "scripted/deep", "off")
    replayed = player.take("Run it.", "scripted/plain", "off")
    assert replayed is not None
    assert replayed.replayed_from == "c.jsonl"
    assert player.take("Run it.", "scripted/plain", "off") is None


def test_a_recorder_writes_over_its_own_cassette_only(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    recorder = Recorder(path)
    turn = transcript_of(finished_turn())
    recorder.write("One.", "scripted/plain", "off", turn)
    recorder.write("Two.", "scripted/plain", "off", turn)
    assert len(path.read_text().splitlines()) == 2
    path.write_text("the user's own notes\n")  # someone else writes there meanwhile
    with pytest.raises(CassetteError, match=r"did not write it.*The turn was not recorded"):
        recorder.write("Three.", "scripted/plain", "off", turn)
    assert path.read_text() == "the user's own notes\n"
    recorder.close()


def test_a_notebook_records_or_replays_one_cassette_at_a_time(tmp_path: Path):
    cassettes = Cassettes()
    assert cassettes.describe() is None
    assert cassettes.answer("Run it.", None, None) is None  # no cassette: ask Pi
    path = tmp_path / "c.jsonl"
    cassettes.record(path)
    cassettes.keep("Run it.", "scripted/plain", "off", transcript_of(finished_turn()))
    assert cassettes.describe() == "recording to c.jsonl (1 turns)"
    with pytest.raises(CassetteError, match="stop with %pi record off first"):
        cassettes.replay(path, live_on_miss=False)
    stopped = cassettes.stop_recording()
    assert stopped is not None
    assert stopped.position == 1
    assert cassettes.stop_recording() is None

    cassettes.replay(path, live_on_miss=False)
    with pytest.raises(CassetteError, match="stop with %pi replay off before recording"):
        cassettes.record(tmp_path / "other.jsonl")
    assert cassettes.answer("Run it.", "scripted/plain", "off") is not None
    assert cassettes.describe() == "replaying c.jsonl (1 of 1 turns used)"
    with pytest.raises(CassetteError, match="holds 1 turns and this cell asks for one more"):
        cassettes.answer("More.", "scripted/plain", "off")

    cassettes.replay(path, live_on_miss=True)
    cassettes.answer("Run it.", "scripted/plain", "off")
    assert cassettes.answer("More.", "scripted/plain", "off") is None  # past the end: Pi
    assert cassettes.stop_replaying() is not None
    assert cassettes.describe() is None


def test_a_huge_prompt_is_kept_once_its_transcript_holds_its_start_and_the_count():
    turn = finished_turn()
    turn.prompt = "p" * 5_000_000
    transcript = transcript_of(turn)
    assert transcript.prompt == "p" * PROMPT_LIMIT
    assert transcript.prompt_cut == 5_000_000 - PROMPT_LIMIT
    assert len(transcript.model_dump_json()) < 2 * PROMPT_LIMIT
    assert f"{5_000_000 - PROMPT_LIMIT:,} later characters" in to_markdown([transcript])


def test_a_written_file_gets_the_mode_a_plain_write_would_give(tmp_path: Path):
    new = tmp_path / "new.md"
    write_file(new, "x", ours=lambda path: True)
    umask = os.umask(0o022)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    kept = tmp_path / "kept.md"
    kept.write_text("old")
    kept.chmod(0o640)
    write_file(kept, "new", ours=lambda path: True)
    assert (kept.read_text(), kept.stat().st_mode & 0o777) == ("new", 0o640)


def test_the_markdown_export_shows_the_tool_and_the_answer():
    markdown = to_markdown([transcript_of(finished_turn("hello ``` fence"))])
    assert "**Tool `bash`** (ok)" in markdown
    assert '"command": "echo hi"' in markdown
    assert "````\nhello ``` fence\n````" in markdown
    assert markdown.rstrip().endswith("Done.")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_markdown_export_is_as_inert_as_the_cell(payload: str):
    turn = Turn(payload)
    tool = ToolBlock(call_id="c1", name=payload, arguments={"x": payload}, output=payload)
    tool.state = "ok"
    turn.blocks = [
        TextBlock(f"Look: {payload}\n\nand {payload}"),
        ThinkingBlock(payload),
        tool,
        NoticeBlock(text=payload),
        ErrorBlock(message=payload),
        TextBlock(payload),
    ]
    turn.provider, turn.model = payload, payload
    turn.finish(None)
    markdown = to_markdown([transcript_of(turn, session_id=payload)])
    assert active_content([{"text/markdown": markdown}]) == []


def test_finding_a_session_by_default_id_or_path(tmp_path: Path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    older = sessions / "2026-01-01_aaaa-1111.jsonl"
    current = sessions / "2026-01-02_bbbb-2222.jsonl"
    older.write_text("{}\n")
    current.write_text("{}\n")
    assert find_session(None, current, str(tmp_path)) == older
    assert find_session("aaaa", current, str(tmp_path)) == older
    assert find_session("sessions/2026-01-01_aaaa-1111.jsonl", current, str(tmp_path)) == older
    with pytest.raises(PiSessionNotFound, match="No session with id 'cccc'"):
        find_session("cccc", current, str(tmp_path))
    with pytest.raises(PiSessionNotFound, match="There is no session file"):
        find_session("gone.jsonl", current, str(tmp_path))
    older.unlink()
    with pytest.raises(PiSessionNotFound, match="no earlier Pi session"):
        find_session(None, current, str(tmp_path))


def test_an_edits_diff_is_kept_rebuilt_and_exported_as_a_diff_block():
    turn = finished_turn()
    [tool] = [block for block in turn.blocks if isinstance(block, ToolBlock)]
    tool.name, tool.diff = "edit", "--- a.py\n+++ a.py\n-y = 2\n+y = 20 ```\n"
    transcript = transcript_of(turn)
    [part] = [part for part in transcript.blocks if isinstance(part, ToolPart)]
    assert part.diff == tool.diff
    [rebuilt] = [block for block in transcript.to_turn().blocks if isinstance(block, ToolBlock)]
    assert rebuilt.diff == tool.diff
    markdown = to_markdown([transcript])
    assert "````diff\n--- a.py\n+++ a.py\n-y = 2\n+y = 20 ```\n````" in markdown
