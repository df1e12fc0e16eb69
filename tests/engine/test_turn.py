"""Folding real recorded Pi streams into a turn's blocks."""

from __future__ import annotations

from pi_kernel.blocks import ErrorBlock, NoticeBlock, TextBlock, ThinkingBlock, ToolBlock
from pi_kernel.rpc.feed import ClientNotice
from pi_kernel.rpc.protocol import Response
from pi_kernel.rpc.run import RunOutcome
from pi_kernel.rpc.transport import decode_line
from pi_kernel.transcript import CUT_OFF_LABEL, NoticePart, transcript_of
from pi_kernel.turn import Turn
from tests.support.pis import DATA

TRACES = DATA / "traces"


def fold(trace: str, prompt: str = "prompt") -> Turn:
    turn = Turn(prompt)
    for line in (TRACES / trace).read_bytes().split(b"\n"):
        if not line:
            continue
        record = decode_line(line)
        if not isinstance(record, Response | Exception):
            turn.apply(record)
    return turn


def kinds(turn: Turn) -> list[str]:
    return [type(block).__name__ for block in turn.visible_blocks]


def test_a_text_answer_is_one_text_block_without_duplicated_first_delta():
    turn = fold("087/text.jsonl")
    assert kinds(turn) == ["TextBlock"]
    block = turn.visible_blocks[0]
    assert isinstance(block, TextBlock)
    assert block.done
    assert turn.text.count("Hello") == 1
    assert turn.provider == "scripted"
    assert turn.model == "plain"


def test_a_tool_only_step_shows_no_empty_assistant_block():
    turn = fold("087/tool.jsonl")
    assert kinds(turn) == ["ToolBlock", "TextBlock"]
    tool = turn.visible_blocks[0]
    assert isinstance(tool, ToolBlock)
    assert tool.name == "bash"
    assert tool.arguments == {"command": "echo hello"}
    assert tool.output.strip() == "hello"
    assert tool.state == "ok"


def test_text_tool_text_tool_text_stays_in_order():
    turn = fold("087/multi_stage.jsonl")
    assert kinds(turn) == ["TextBlock", "ToolBlock", "TextBlock", "ToolBlock", "TextBlock"]


def test_thinking_is_its_own_block_before_the_answer():
    turn = fold("087/thinking.jsonl")
    assert kinds(turn) == ["ThinkingBlock", "TextBlock"]
    thinking = turn.visible_blocks[0]
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.text


def test_parallel_tools_each_get_their_block_and_output():
    turn = fold("087/parallel_tools.jsonl")
    tools = [block for block in turn.visible_blocks if isinstance(block, ToolBlock)]
    assert len(tools) == 2
    assert {tool.output.strip() for tool in tools} == {"alpha", "beta"}
    assert all(tool.state == "ok" for tool in tools)


def test_a_failing_tool_is_marked_error():
    turn = fold("087/failing_tool.jsonl")
    tool = next(block for block in turn.visible_blocks if isinstance(block, ToolBlock))
    assert tool.state == "error"
    assert "code 3" in tool.output


def test_a_retried_error_leaves_a_notice_not_an_error():
    turn = fold("087/retry_500.jsonl")
    # The failed attempt's error block stays in place, now showing the retry notice.
    assert kinds(turn) == ["ErrorBlock", "TextBlock"]
    retried = turn.visible_blocks[0]
    assert isinstance(retried, ErrorBlock)
    assert retried.retry_notice is not None
    assert "Retrying" in retried.retry_notice
    assert not any(isinstance(block, ErrorBlock) and block.failed for block in turn.blocks)
    transcript = transcript_of(turn)
    assert [part.type for part in transcript.blocks] == ["notice", "text"]
    assert transcript.errors == []


def test_a_dropped_stream_keeps_what_it_showed_out_of_the_answer():
    # What the cell showed of the failed attempt stays there (issue 18: it used to blank),
    # marked cut off; the answer, and the transcript's text, are the retry's alone.
    turn = fold("087/dropped.jsonl")
    texts = [block for block in turn.visible_blocks if isinstance(block, TextBlock)]
    assert [block.cut_off for block in texts] == [True, False]
    cut, answer = texts
    assert cut.text.strip()
    assert turn.text == answer.text.strip()
    retry = next(block for block in turn.visible_blocks if isinstance(block, ErrorBlock))
    assert retry.retry_notice is not None
    assert retry.retry_notice.endswith("the text above was cut off")
    assert turn.visible_blocks.index(cut) < turn.visible_blocks.index(retry)
    transcript = transcript_of(turn)
    assert transcript.text == turn.text
    kept = [p.text for p in transcript.blocks if isinstance(p, NoticePart) and "Cut off" in p.text]
    assert kept == [f"{CUT_OFF_LABEL} {cut.text.strip()}"]


def test_an_aborted_stream_keeps_its_partial_text_and_says_interrupted():
    turn = fold("087/abort.jsonl")
    turn.finish(RunOutcome("aborted"), interrupted=True)
    assert turn.status == "interrupted"
    assert isinstance(turn.visible_blocks[0], TextBlock)
    assert turn.visible_blocks[0].text
    last = turn.visible_blocks[-1]
    assert isinstance(last, NoticeBlock)
    assert "Interrupted" in last.text


def test_calls_inside_codemode_scripts_are_folded_into_their_script_s_block():
    turn = fold("160/codemode.jsonl")
    assert kinds(turn) == ["ToolBlock", "ToolBlock", "TextBlock"]
    for script in turn.visible_blocks[:2]:
        assert isinstance(script, ToolBlock)
        assert script.name == "codemode"
        assert script.state == "ok"
        assert script.duration_ms is not None
        assert [(call.call_id, call.arguments, call.output) for call in script.calls] == [
            (f"{script.call_id}/1", {"command": "echo one"}, "one\n"),
            (f"{script.call_id}/2", {"command": "echo two"}, "two\n"),
        ]
        assert all(call.state == "ok" and call.duration_ms is not None for call in script.calls)
    assert turn.text == "Both ran."


def test_a_change_to_a_call_inside_a_script_redraws_the_script():
    turn = fold("160/codemode.jsonl")
    script = turn.visible_blocks[0]
    assert isinstance(script, ToolBlock)
    before = script.version
    script.calls[0].touch()
    assert script.version == before + 1


def test_legacy_streams_fold_the_same_way():
    assert kinds(fold("073/text.jsonl")) == ["TextBlock"]
    turn = fold("073/tool.jsonl")
    assert kinds(turn) == ["ToolBlock", "TextBlock"]
    tool = turn.visible_blocks[0]
    assert isinstance(tool, ToolBlock)
    assert tool.name == "bash"
    assert fold("073/text.jsonl").text.count("Hello") == 1


def test_a_failed_outcome_becomes_an_error_block_with_pis_message():
    turn = Turn("hi")
    turn.finish(RunOutcome("failed", "401: invalid api key"))
    assert turn.status == "failed"
    error = turn.visible_blocks[0]
    assert isinstance(error, ErrorBlock)
    assert "invalid api key" in error.message


def test_client_notices_become_notice_blocks():
    turn = Turn("hi")
    turn.apply(ClientNotice(level="warning", message="dialog cancelled"))
    assert kinds(turn) == ["NoticeBlock"]
    turn.finish(RunOutcome("completed"))
    assert turn.usage.output == 0
    assert all(block.done for block in turn.blocks)
