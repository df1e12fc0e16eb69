"""A notebook's Pi turns as a readable Markdown document or as JSON lines of transcripts."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .transcript import (
    ErrorPart,
    NoticePart,
    TextPart,
    ThinkingPart,
    ToolPart,
    Transcript,
    cut_marker,
)
from .turn import tokens_text


def to_jsonl(transcripts: Sequence[Transcript]) -> str:
    return "".join(transcript.model_dump_json() + "\n" for transcript in transcripts)


def to_markdown(transcripts: Sequence[Transcript]) -> str:
    sessions = sorted({t.session_id for t in transcripts if t.session_id})
    lines = ["# Pi conversation", ""]
    if sessions:
        lines += [f"Pi session {', '.join(sessions)}.", ""]
    for number, transcript in enumerate(transcripts, 1):
        lines += [f"## Turn {number}", "", f"*{_facts(transcript)}*", "", "**Prompt**", ""]
        lines += [_fenced(transcript.prompt), ""]
        for part in transcript.blocks:
            lines += [*_part(part), ""]
    return "\n".join(lines)


def _facts(transcript: Transcript) -> str:
    usage = transcript.usage
    facts = [
        transcript.model_ref or "no model",
        f"thinking {transcript.thinking_level or 'unknown'}",
        tokens_text(usage.input, usage.output),
        f"${usage.cost:.4f}",
        transcript.status,
        transcript.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ]
    if transcript.replayed_from:
        facts.append(f"replayed from {transcript.replayed_from}")
    return " · ".join(facts)


def _part(part: object) -> list[str]:
    if isinstance(part, TextPart):
        return [part.text.strip()]
    if isinstance(part, ThinkingPart):
        return ["**Thinking**", "", _quoted(part.text or "(redacted)")]
    if isinstance(part, ToolPart):
        arguments = json.dumps(part.arguments, indent=2, ensure_ascii=False)
        outcome = "failed" if part.is_error else part.state
        return [
            f"**Tool `{part.name}`** ({outcome})",
            "",
            _fenced(arguments, "json"),
            "",
            *([cut_marker(part.output_cut), ""] if part.output_cut else []),
            _fenced((part.output or "(no output)").rstrip("\n")),
        ]
    if isinstance(part, NoticePart):
        return [f"> {part.level}: {part.text}"]
    if isinstance(part, ErrorPart):
        return [f"> **Error:** {part.message}"]
    return []


def _fenced(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:  # a fence longer than any run of backticks inside
        fence += "`"
    return f"{fence}{language}\n{text}\n{fence}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
