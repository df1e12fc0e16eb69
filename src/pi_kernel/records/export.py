"""A notebook's Pi turns as a readable Markdown document or as JSON lines of transcripts, and
the one rule for every file pi-kernel writes for the user (exports and cassettes).

The rule: a file is written whole or not at all (a temporary file beside it, then a rename),
and a file that is already there is replaced only when pi-kernel wrote it (each kind
recognizes its own) or the user said so.  People's notebooks, notes and data are never
truncated because a path was mistyped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import FileRefused
from ..files import replace_file
from ..transcript import (
    ErrorPart,
    NoticePart,
    TextPart,
    ThinkingPart,
    ToolPart,
    Transcript,
    cut_marker,
)
from ..turn import tokens_text
from .markdown import clean_text, safe_markdown

MARKDOWN_MARK = "<!-- written by pi-kernel (%pi export) -->"
"""The first line of a Markdown export (invisible when rendered): how a later export knows
the file is its own to replace."""


def write_file(
    path: Path, text: str, *, ours: Callable[[Path], bool], replace: bool = False
) -> None:
    """Write ``text`` to ``path`` whole or not at all; an existing file only when ``ours``
    recognizes it or ``replace`` is given.  Raises ``FileRefused`` with one sentence."""
    if path.is_dir():
        raise FileRefused(f"{path} is a directory: give a file name.")
    if path.exists() and not replace and not ours(path):
        raise FileRefused(
            f"{path.name} exists and pi-kernel did not write it: choose another name, or "
            "add --replace to overwrite it."
        )
    try:
        replace_file(path, text.encode("utf-8"))
    except OSError as exc:
        raise FileRefused(f"Cannot write {path}: {exc.strerror or exc}.") from None


def is_markdown_export(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().rstrip("\n") == MARKDOWN_MARK
    except (OSError, UnicodeDecodeError):
        return False


def is_jsonl_export(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            Transcript.model_validate_json(line)
    except (OSError, UnicodeDecodeError, ValidationError):
        return False
    return True


def to_jsonl(transcripts: Sequence[Transcript]) -> str:
    return "".join(transcript.model_dump_json() + "\n" for transcript in transcripts)


def to_markdown(transcripts: Sequence[Transcript]) -> str:
    """A readable document of the turns.  Every piece that came from Pi, the model or a tool
    goes through ``safe_markdown``, as in the cell: rendered anywhere, it runs nothing."""
    sessions = sorted({t.session_id for t in transcripts if t.session_id})
    lines = [MARKDOWN_MARK, "# Pi conversation", ""]
    if sessions:
        lines += [_safe(f"Pi session {', '.join(sessions)}."), ""]
    for number, transcript in enumerate(transcripts, 1):
        lines += [f"## Turn {number}", "", f"*{_safe(_facts(transcript))}*", "", "**Prompt**"]
        lines += ["", _safe(_fenced(transcript.prompt)), ""]
        if transcript.prompt_cut:
            lines += [
                f"[pi-kernel: {transcript.prompt_cut:,} later characters of this prompt "
                "were not kept]",
                "",
            ]
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
        return [_safe(part.text.strip())]
    if isinstance(part, ThinkingPart):
        return ["**Thinking**", "", _quoted(_safe(part.text or "(redacted)"))]
    if isinstance(part, ToolPart):
        arguments = json.dumps(part.arguments, indent=2, ensure_ascii=False)
        outcome = "failed" if part.is_error else part.state
        return [
            _safe(f"**Tool {_code_span(part.name)}** ({outcome})"),
            "",
            _safe(_fenced(arguments, "json")),
            "",
            *([cut_marker(part.output_cut), ""] if part.output_cut else []),
            _safe(_fenced((part.output or "(no output)").rstrip("\n"))),
            *(["", _safe(_fenced(part.diff.rstrip("\n"), "diff"))] if part.diff else []),
        ]
    if isinstance(part, NoticePart):
        return [_quoted(_safe(f"{part.level}: {part.text}"))]
    if isinstance(part, ErrorPart):
        return [_quoted(f"**Error:** {_safe(part.message)}")]
    return []


def _safe(text: str) -> str:
    return safe_markdown(clean_text(text))


def _fenced(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:  # a fence longer than any run of backticks inside
        fence += "`"
    return f"{fence}{language}\n{text}\n{fence}"


def _code_span(text: str) -> str:
    if "`" not in text:
        return f"`{text}`"
    ticks = "``"
    while ticks in text:  # longer than any run of backticks inside
        ticks += "`"
    return f"{ticks} {text} {ticks}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
