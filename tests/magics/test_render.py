"""Rendering a turn into notebook outputs: what is shown, how safely, and at what cost.

Turns come from real recorded Pi streams (``tests/data/traces/087``) or are built from blocks
directly.  The display is a recording fake with IPython's shape, the clock a fake one: no
kernel, no sleeps.  Markdown is checked the way JupyterLab would show it, by rendering it
with marked (the Markdown library JupyterLab uses, installed here as a dependency of Pi).
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Iterator

import pytest

from pi_kernel.blocks import Block, ErrorBlock, NoticeBlock, TextBlock, ThinkingBlock, ToolBlock
from pi_kernel.kernel_tools.catalog import PYTHON
from pi_kernel.records.markdown import _walk_to_paragraph_break, safe_markdown
from pi_kernel.rpc.protocol import Response
from pi_kernel.rpc.run import RunOutcome
from pi_kernel.rpc.transport import decode_line
from pi_kernel.transcript import TOOL_OUTPUT_LIMIT
from pi_kernel.turn import Turn
from pi_magics.render import (
    EMPTY,
    FREEZE_AT,
    HEARTBEAT,
    MAX_UPDATES_PER_SECOND,
    TurnDisplay,
    _freeze_point,
    block_bundle,
    error_bundle,
    footer_bundle,
    tool_bundle,
)
from tests.support.fake_frontend import Clock, Frontend
from tests.support.html_safety import PAYLOADS, active_content, marked
from tests.support.pis import REPO

TRACES = REPO / "tests" / "data" / "traces" / "087"


def stream(trace: str, frontend: Frontend) -> tuple[Turn, TurnDisplay]:
    """Fold a recorded trace, refreshing the display after every event (a second apart)."""
    turn = Turn("prompt")
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    for line in (TRACES / trace).read_bytes().split(b"\n"):
        record = decode_line(line) if line else None
        if record is not None and not isinstance(record, Response | Exception):
            turn.apply(record)
            display.update(turn)
            clock.now += 1.0
    return turn, display


def turn_of(*blocks: Block) -> Turn:
    turn = Turn("prompt")
    turn.blocks.extend(blocks)
    for block in blocks:
        block.touch()
    return turn


def code_text(markdown: str) -> list[str]:
    """The text inside each ``<code>`` of the rendered Markdown, as a reader sees it."""
    rendered = marked([markdown])[0]
    return [html.unescape(code) for code in re.findall(r"<code[^>]*>(.*?)</code>", rendered, re.S)]


# -- what is shown ----------------------------------------------------------------------------


def test_a_tool_only_step_renders_nothing_for_its_empty_text():
    frontend = Frontend()
    tool = ToolBlock(call_id="c1", name="bash", arguments={"command": "ls"}, state="running")
    turn = turn_of(TextBlock(text=" \n", done=True), tool)
    TurnDisplay(frontend, clock=Clock()).update(turn)
    assert frontend.plain() == ["[tool bash] ls — running…"]


def test_text_tool_text_renders_one_output_per_block_in_order():
    frontend = Frontend()
    turn, display = stream("multi_stage.jsonl", frontend)
    display.finish(turn)
    assert frontend.plain()[:-1] == [
        "First I will run step one.",
        "[tool bash] echo one — ok\n    one",
        "Step one printed one. Now step two.",
        "[tool bash] echo two — ok\n    two",
        "Both steps ran: one, then two.",
    ]


def test_thinking_is_a_collapsed_details_block():
    frontend = Frontend()
    turn, display = stream("thinking.jsonl", frontend)
    display.finish(turn)
    thinking = frontend.shown()[0]["text/html"]
    assert thinking.startswith("<details><summary")
    assert "open" not in thinking.split(">")[0]
    assert ">Thinking</summary>" in thinking
    assert "The user wants a greeting. I should keep it short." in thinking


def test_partial_tool_output_replaces_the_previous_output():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    tool = ToolBlock(call_id="c1", name="bash", arguments={"command": "progress"}, state="running")
    turn = turn_of(tool)
    for percent in ("10%", "20%"):
        tool.output = f"downloading {percent}\n"
        tool.touch()
        display.update(turn)
        clock.now += 1.0
    assert frontend.plain() == ["[tool bash] progress — running…\n    downloading 20%"]


def test_a_long_tool_output_shows_its_end_with_a_count_of_what_is_left_out():
    lines = [f"line {number}" for number in range(10_000)]
    tool = ToolBlock(name="bash", arguments={"command": "seq"}, output="\n".join(lines), state="ok")
    bundle = tool_bundle(tool)
    assert "line 9999" in bundle["text/html"]
    assert "line 0\n" not in bundle["text/plain"]
    assert re.search(r"… [\d,]+ more characters", bundle["text/plain"])
    assert len(bundle["text/html"]) < 2 * TOOL_OUTPUT_LIMIT


def test_a_replayed_tool_output_counts_what_its_transcript_had_cut():
    tool = ToolBlock(name="bash", output="the end\n", output_cut=123_456, state="ok")
    assert "… 123,456 more characters\n    the end" in tool_bundle(tool)["text/plain"]


def test_an_error_block_shows_pi_s_message_as_an_error():
    bundle = error_bundle(ErrorBlock(message='429: {"message": "rate limited, slow down"}'))
    assert "rate limited, slow down" in html.unescape(bundle["text/html"])
    assert "Error" in bundle["text/html"]
    assert "error-color" in bundle["text/html"]
    assert bundle["text/plain"] == '[error] 429: {"message": "rate limited, slow down"}'


def test_plain_text_reads_well_in_a_terminal():
    blocks = [
        ToolBlock(name="bash", arguments={"command": "echo hi"}, output="hi\n", state="ok"),
        ToolBlock(name="read", arguments={"path": "a.py", "limit": 5}, state="error"),
        ThinkingBlock(text="First, think.\nThen answer.", done=True),
        NoticeBlock(level="warning", text="Retrying after 500"),
    ]
    assert [block_bundle(block)["text/plain"] for block in blocks] == [
        "[tool bash] echo hi — ok\n    hi",
        "[tool read] path=a.py, limit=5 — error",
        "[thinking] First, think. Then answer.",
        "[warning] Retrying after 500",
    ]


def test_the_footer_names_model_level_tokens_cost_duration_and_status():
    turn = Turn("prompt")
    turn.provider, turn.model, turn.thinking_level = "anthropic", "claude-sonnet-4", "high"
    turn.usage.input, turn.usage.output, turn.usage.cost = 12_345, 678, 0.0123
    turn.elapsed = 1.2
    turn.status = "interrupted"
    assert footer_bundle(turn)["text/plain"] == (
        "anthropic/claude-sonnet-4 · thinking high · 12,345 in / 678 out tokens · $0.0123"
        " · 1.2 s · interrupted"
    )


def test_a_footer_without_usage_says_the_tokens_were_not_reported():
    turn = Turn("prompt")
    turn.provider, turn.model, turn.thinking_level = "proxy", "no-usage-in-stream", "off"
    turn.elapsed = 3.0
    turn.status = "completed"
    assert footer_bundle(turn)["text/plain"] == (
        "proxy/no-usage-in-stream · thinking off · tokens not reported · $0.0000 · 3.0 s"
    )


def test_quiet_mode_renders_only_at_finish():
    frontend = Frontend()
    display = TurnDisplay(frontend, quiet=True, clock=Clock())
    turn = turn_of(TextBlock(text="Hello"), ToolBlock(name="bash", state="running"))
    display.update(turn)
    assert frontend.sends == 0
    display.finish(turn)
    assert len(frontend.outputs) == 3


# -- safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_model_and_tool_text_never_becomes_active_content(payload: str):
    blocks = [
        TextBlock(text=f"Look: {payload}\n\nand {payload}", done=True),
        TextBlock(text=payload, done=True),
        ThinkingBlock(text=payload, done=True),
        ToolBlock(name=payload, arguments={"command": payload}, output=payload, state="ok"),
        ToolBlock(name="read", arguments={"path": payload}, output=payload, state="error"),
        ToolBlock(name=PYTHON, arguments={"code": payload}, output=payload, state="ok"),
        ToolBlock(name="edit", arguments={"path": payload}, diff=f"+{payload}\n-{payload}"),
        NoticeBlock(level="error", text=payload),
        ErrorBlock(message=payload),
    ]
    turn = turn_of(*blocks)
    turn.provider, turn.model = payload, payload
    assert active_content([*map(block_bundle, blocks), footer_bundle(turn)]) == []


def test_ordinary_markdown_still_renders():
    markdown = safe_markdown(
        "# Title\n\n- **bold** and *it*\n- [docs](https://example.com/?a=1&b=2)\n\n"
        "> quoted\n\nMail <mailto:a@example.com>; 1 < 2 & 3 > 2."
    )
    rendered = marked([markdown])[0]
    assert "<h1>Title</h1>" in rendered
    assert "<strong>bold</strong>" in rendered
    assert '<a href="https://example.com/?a=1&amp;b=2">docs</a>' in rendered
    assert "<blockquote>" in rendered
    assert '<a href="mailto:a@example.com">' in rendered
    assert "1 &lt; 2 &amp; 3 &gt; 2." in rendered


def test_code_shows_angle_brackets_and_ampersands_as_written():
    markdown = safe_markdown(
        "```python\nif a < b and c & d:\n    pass\n```\n\nInline `x < y && z` and `a<b>`."
    )
    assert code_text(markdown) == ["if a < b and c & d:\n    pass", "x < y && z", "a<b>"]


def test_code_that_is_harmless_as_prose_stays_markdown_so_it_is_highlighted():
    text = "```python\nif a and b & c:\n    print(d[0])\n```\n\nInline `x && y`."
    assert safe_markdown(text) == text


# -- streaming and its cost -------------------------------------------------------------------


def test_updates_are_coalesced_to_at_most_15_per_simulated_second():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    text = TextBlock()
    turn = turn_of(text)
    for number in range(1000):
        text.text += f"word{number} "
        text.touch()
        display.update(turn)
        clock.now += 0.001
    assert frontend.sends <= MAX_UPDATES_PER_SECOND


def test_a_refresh_that_showed_nothing_does_not_hold_back_the_first_text():
    frontend = Frontend()
    display = TurnDisplay(frontend, clock=Clock())
    text = TextBlock()
    turn = turn_of(text)
    display.update(turn)  # agent_start and friends: nothing visible yet
    assert frontend.sends == 0
    text.append("Hello")
    text.touch()
    display.update(turn)  # at the same instant: shown, not held back for 1/15 s
    assert not display.pending
    assert frontend.plain() == ["Hello"]


def test_an_update_arriving_too_soon_is_shown_by_finish():
    frontend = Frontend()
    display = TurnDisplay(frontend, clock=Clock())
    text = TextBlock(text="Hello")
    turn = turn_of(text)
    display.update(turn)
    text.text += ", world"
    text.touch()
    display.update(turn)
    assert display.pending
    display.finish(turn)
    assert frontend.plain()[0] == "Hello, world"


def test_a_block_touched_after_its_final_state_was_shown_is_not_sent_again():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    text = TextBlock(text="Done.", done=True)
    turn = turn_of(text)
    display.update(turn)
    text.touch()  # message_end touches blocks that text_end already finished
    clock.now += 1.0
    display.update(turn)
    sends = frontend.sends
    display.finish(turn)
    assert frontend.sends == sends + 1  # only the footer


def test_finish_after_a_streamed_turn_sends_only_the_footer():
    frontend = Frontend()
    turn, display = stream("multi_stage.jsonl", frontend)
    turn.finish(RunOutcome(status="completed"))
    sends = frontend.sends
    display.finish(turn)
    assert frontend.sends == sends + 1
    assert frontend.outputs[-1].bundles == [footer_bundle(turn)]


def test_a_retried_error_becomes_the_retry_notice_in_place():
    # Issue 18: the error's output used to be blanked and the notice added below it.
    frontend = Frontend()
    turn, display = stream("retry_500.jsonl", frontend)
    display.finish(turn)
    error = frontend.outputs[0]
    assert error.bundles[0]["text/plain"].startswith("[error] 500")
    assert error.bundle["text/plain"].startswith("[warning] Retrying after 500")
    assert EMPTY not in error.bundles
    assert frontend.plain()[:-1] == [
        "[warning] Retrying after 500: "
        '{"message":"scripted LLM: internal server error","type":"server_error","code":null}'
        " (attempt 1/3, in 0.05 s)",
        "Recovered after the error.",
    ]


def test_a_removed_block_is_cleared_once():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    first, second = NoticeBlock(text="goes away"), TextBlock(text="stays", done=True)
    turn = turn_of(first, second)
    display.update(turn)
    turn.blocks.remove(first)
    clock.now += 1.0
    display.update(turn)
    display.finish(turn)
    assert frontend.outputs[0].bundles[1:] == [EMPTY]
    assert frontend.plain()[:-1] == ["stays"]


def test_a_quiet_running_tool_shows_its_time_at_every_heartbeat():
    """Idle culling counts output, not a busy kernel: a long quiet tool run shows progress."""
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    tool = ToolBlock(call_id="c1", name="bash", arguments={"command": "make"}, state="running")
    turn = turn_of(TextBlock(text="Building.", done=True), tool)
    display.update(turn)
    sends = frontend.sends
    for second in range(1, 3 * int(HEARTBEAT) + 1):  # the pump calls update all the time
        clock.now = float(second)
        display.update(turn)
    assert frontend.sends == sends + 3  # one heartbeat each HEARTBEAT seconds, no more
    labels = [bundle["text/plain"].split(" — ")[1] for bundle in frontend.outputs[1].bundles]
    assert labels == ["running…", "running… 30 s", "running… 1 min 0 s", "running… 1 min 30 s"]
    tool.state, tool.duration_ms = "ok", 95_000.0
    tool.touch()
    display.finish(turn)
    assert frontend.outputs[1].bundle["text/plain"] == "[tool bash] make — ok in 95.0 s"


def test_a_quiet_model_shows_a_still_working_line_that_goes_when_text_comes():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock)
    text = TextBlock()
    turn = turn_of(text)
    clock.now = HEARTBEAT - 1
    display.update(turn)
    assert frontend.outputs == []  # quiet, but not for long yet
    clock.now = HEARTBEAT + 0.5
    display.update(turn)
    assert frontend.plain() == ["[info] Pi is still working (30 s so far)"]
    clock.now += 1.0
    text.text = "Here it is."
    text.touch()
    display.update(turn)
    assert frontend.plain() == ["Here it is."]  # the line is blanked once the answer shows


def test_a_quiet_turn_shows_only_the_still_working_line_until_it_ends():
    frontend = Frontend()
    clock = Clock()
    display = TurnDisplay(frontend, clock=clock, quiet=True)
    tool = ToolBlock(call_id="c1", name="bash", arguments={"command": "make"}, state="running")
    turn = turn_of(tool)
    clock.now = 2 * HEARTBEAT
    display.update(turn)
    assert frontend.plain() == ["[info] Pi is still working (1 min 0 s so far)"]
    tool.state = "ok"
    tool.touch()
    turn.finish(RunOutcome(status="completed"))
    display.finish(turn)
    assert frontend.plain()[0] == "[tool bash] make — ok"  # the line is gone, the end shown


def long_answer(tokens: int) -> Iterator[str]:
    """Deltas of a long Markdown answer: paragraphs, lists, and code with blank lines in it."""
    words = ("the", "model", "writes", "a", "long", "answer", "with", "code", "<b>", "&")
    for number in range(tokens // 5):
        if number % 400 == 399:
            yield "\n\n```python\nif a < b:\n\n    pass\n```\n\n"
        elif number % 20 == 19:
            yield f"{number}.\n\n- item\n- item\n\n"
        else:
            yield " ".join(words[(number + shift) % len(words)] for shift in range(5)) + " "


def stream_long_answer(display: TurnDisplay, clock: Clock) -> Turn:
    text = TextBlock()
    turn = turn_of(text)
    for delta in long_answer(100_000):
        text.text += delta
        text.touch()
        display.update(turn)
        clock.now += 1 / MAX_UPDATES_PER_SECOND
    text.done = True
    text.touch()
    turn.finish(RunOutcome(status="completed"))
    display.finish(turn)
    return turn


def test_a_long_answer_costs_at_most_three_times_its_final_bytes():
    clock = Clock()
    streamed = TurnDisplay(Frontend(), clock=clock)
    turn = stream_long_answer(streamed, clock)
    final = TurnDisplay(Frontend(), quiet=True)
    final.finish(turn)
    assert streamed.bytes_sent <= 3 * final.bytes_sent


def test_a_long_answer_streams_in_segments_that_add_up_to_the_answer():
    frontend = Frontend()
    clock = Clock()
    turn = stream_long_answer(TurnDisplay(frontend, clock=clock), clock)
    segments = frontend.plain()[:-1]
    assert len(segments) > 1
    assert "".join(segments).strip() == turn.text
    assert all(segment.count("```") % 2 == 0 for segment in segments)


def _random_texts() -> Iterator[str]:
    rng = random.Random(2026)
    pieces = ["word ", "\n", "\n\n", " \n", "\t\n", "\r\n", "  ", "x" * 300, "\n \n"]
    for _ in range(200):
        yield "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 60)))


@pytest.mark.parametrize(
    "text",
    [
        "\n\n" + "x" * 2000,  # blank lines before any text: nothing to freeze
        "a\n \n\n" + "x" * 2000,  # several blank lines: after the last
        "a\r\n\r\n" + "x" * 2000,  # Windows line ends
        "a\n\n" + "x" * 2000 + "\n\nb",  # a half-written line is not a blank one
        *_random_texts(),
    ],
)
def test_the_quick_freeze_point_agrees_with_the_line_walk(text: str):
    # Text without fences takes a regex shortcut; it must cut where the walk would.
    for start in (0, 1, len(text) // 3):
        complete = text[start : text.rfind("\n") + 1]
        walked = _walk_to_paragraph_break(complete)
        expected = None if walked is None or len(text) - start <= FREEZE_AT else start + walked
        assert _freeze_point(text, start) == expected


def test_code_run_in_the_kernel_is_shown_coloured_and_what_pi_read_collapsed():
    block = ToolBlock(
        name=PYTHON, arguments={"code": "x = 6 * 7\nprint(x)"}, output="Output:\n42", state="ok"
    )
    bundle = block_bundle(block)
    html_text = bundle["text/html"]
    assert "<span style=" in html_text.split("<details>")[0]  # highlighted code before it
    assert "code=" not in html_text  # the code itself, not an argument summary
    assert "<details><summary>What Pi got back</summary>" in html_text
    assert bundle["text/plain"].splitlines()[1:] == [
        "    x = 6 * 7",
        "    print(x)",
        "    Output:",
        "    42",
    ]


def test_a_long_diff_starts_collapsed_and_a_short_one_open():
    short = block_bundle(ToolBlock(name="edit", diff="-a\n+b", state="ok"))["text/html"]
    long = block_bundle(ToolBlock(name="edit", diff="+x\n" * 100, state="ok"))["text/html"]
    assert "<details open><summary>Diff: 1 line added, 1 removed" in short
    assert "<details><summary>Diff: 100 lines added, 0 removed" in long


def test_a_call_about_to_run_is_the_newest_output_and_a_sibling_shown_early_comes_back_below():
    frontend, clock = Frontend(), Clock()
    first = ToolBlock(call_id="a", name=PYTHON, arguments={"code": "print(1)"})
    second = ToolBlock(call_id="b", name=PYTHON, arguments={"code": "print(2)"})
    turn = turn_of(first, second)
    display = TurnDisplay(frontend, clock=clock)
    display.update(turn, now=True)
    assert len(frontend.shown()) == 2  # Pi announced both calls before either ran
    display.show_up_to(turn, first)
    (shown,) = frontend.plain()
    assert "print(1)" in shown
    ran = len(frontend.outputs)  # what the first call's code shows would come here
    clock.now += 1
    display.update(turn)
    assert [output.bundle for output in frontend.outputs[ran:]] == frontend.shown()[1:]
    assert "print(2)" in frontend.plain()[1]


def test_after_a_clear_the_turn_up_to_the_running_call_is_drawn_again():
    frontend, clock = Frontend(), Clock()
    text, tool = TextBlock("Let me look."), ToolBlock(call_id="a", name=PYTHON, arguments={})
    turn = turn_of(text, tool)
    display = TurnDisplay(frontend, clock=clock)
    display.update(turn, now=True)
    before = len(frontend.outputs)
    display.redraw(turn, tool)  # the cell was cleared: its outputs are gone
    again = frontend.outputs[before:]
    assert [output.bundle["text/plain"] for output in again] == frontend.plain()[:2]
    assert "Let me look." in again[0].bundle["text/plain"]


@pytest.mark.parametrize(
    ("code", "marked"),
    [
        ("ok = 1\rrm_everything()", "ok = 1␍rm_everything()"),
        ("x = 1\b\b", "x = 1␈␈"),
        ("print('\x1b[31mred')", "print('␛[31mred')"),
        ("if admin:\u202e  ", "if admin:⟨U+202E⟩  "),
        ("a = 1\u2066b\u2069\u200b", "a = 1⟨U+2066⟩b⟨U+2069⟩⟨U+200B⟩"),
        ("windows = 1\r\nline = 2\tx", "windows = 1\nline = 2\tx"),
    ],
    ids=["carriage return", "backspace", "escape", "bidi override", "isolates", "crlf"],
)
def test_the_code_a_tool_block_shows_marks_its_controls_instead_of_obeying_them(
    code: str, marked: str
):
    block = ToolBlock(call_id="a", name=PYTHON, arguments={"code": code}, state="running")
    plain = block_bundle(block)["text/plain"]
    html_text = html.unescape(re.sub(r"<[^>]+>", "", block_bundle(block)["text/html"]))
    for shown in (plain, html_text):
        assert "\n".join(line.strip() for line in marked.split("\n")) in "\n".join(
            line.strip() for line in shown.split("\n")
        )
        assert not re.search("[\r\b\x1b\u202e\u2066\u2069\u200b]", shown)
