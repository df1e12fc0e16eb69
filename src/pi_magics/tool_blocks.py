"""A tool call in a cell: its header (name, a short account of its arguments, its state and
time), what it showed, and what it changed — the code Pi ran in the kernel (coloured), an
edit's diff, a write's size — as HTML for notebooks and text for terminals.

What Pi asked to run is shown exactly as it will run: its control and bidirectional
characters are marked (``visible_controls``), never obeyed, so a ``\r`` cannot hide the start
of a line of code and a right-to-left override cannot reorder it.  What a tool printed is
output, shown as a terminal would (``clean_text``)."""

from __future__ import annotations

import difflib
import html
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from pi_kernel.blocks import ToolBlock
from pi_kernel.kernel_tools.catalog import PROPOSE_CELL, PYTHON, TOOL_NAMES
from pi_kernel.records.markdown import clean_text, visible_controls
from pi_kernel.transcript import output_tail

if TYPE_CHECKING:
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

Bundle = dict[str, Any]
"""A MIME bundle: ``{"text/markdown" or "text/html": ..., "text/plain": ...}``, and JSON
data for the transcript."""

KERNEL_TOOLS = frozenset(TOOL_NAMES)
CODE_TOOLS = frozenset({PYTHON, PROPOSE_CELL})
DIFF_OPEN_LINES = 30
"""An edit's diff up to this many lines is shown open; a longer one starts collapsed."""
SUMMARY_MAX_CHARS = 80
"""Length of the argument summary in a tool's header."""

_BADGES = {
    "pending": ("pending", "var(--jp-ui-font-color2, #757575)"),
    "running": ("running…", "var(--jp-ui-font-color2, #757575)"),
    "ok": ("ok", "var(--jp-success-color1, #2e7d32)"),
    "error": ("error", "var(--jp-error-color1, #c62828)"),
    "interrupted": ("interrupted", "var(--jp-warn-color1, #ef6c00)"),
}


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_summary(block: ToolBlock) -> str:
    """A short account of a tool's arguments: bash's command, else ``key=value`` pairs
    (none for code run in the kernel: the block shows the code itself)."""
    if kernel_code(block) is not None:
        return ""
    arguments = block.arguments
    command, path, content = (arguments.get(key) for key in ("command", "path", "content"))
    if block.name == "bash" and isinstance(command, str):
        text = command
    elif block.name == "edit" and isinstance(path, str):
        text = path  # the block shows the diff
    elif block.name == "write" and isinstance(path, str) and isinstance(content, str):
        lines = content.count("\n") + (not content.endswith("\n") and bool(content))
        text = f"{path} ({len(content.encode()):,} bytes, {lines:,} line{'s' * (lines != 1)})"
    else:
        text = ", ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in block.arguments.items()
        )
    return shorten(visible_controls(text), SUMMARY_MAX_CHARS)


DETAILS_MAX_CHARS = 4_000
"""Characters of a call's arguments put beside a question about it (a write's content)."""


def call_details(name: str, arguments: dict[str, object], *, code_shown: bool) -> str:
    """A call's arguments in full, as a question about it shows them: the code (unless its
    block above shows it), bash's command, an edit's path and diff, a write's path and
    content, else the arguments as JSON.  Control characters are marked, never obeyed."""
    code, command, path = (arguments.get(key) for key in ("code", "command", "path"))
    if name in CODE_TOOLS and isinstance(code, str):
        text = "" if code_shown else code
    elif name == "bash" and isinstance(command, str):
        text = f"$ {command}"
    elif name == "edit" and isinstance(path, str):
        text = _planned_diff(path, arguments)
    elif name == "write" and isinstance(path, str):
        content = arguments.get("content")
        text = f"{path}:\n{content}" if isinstance(content, str) else path
    else:
        text = json.dumps(arguments, indent=1, ensure_ascii=False)
    if len(text) > DETAILS_MAX_CHARS:
        text = f"{text[:DETAILS_MAX_CHARS]}\n… {len(text) - DETAILS_MAX_CHARS:,} more characters"
    return visible_controls(text)


def _planned_diff(path: str, arguments: dict[str, object]) -> str:
    """What an edit would change, as a diff of each replacement (Pi >= 0.87 sends a list of
    ``edits``; 0.73 one ``oldText``/``newText``)."""
    edits = arguments.get("edits")
    pairs = edits if isinstance(edits, list) else [arguments]
    lines: list[str] = []
    for edit in pairs:
        old, new = (edit.get(k) if isinstance(edit, dict) else None for k in ("oldText", "newText"))
        if isinstance(old, str) and isinstance(new, str):
            diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
            lines += list(diff)[2:]  # the ---/+++ header once, with the path, below
    body = "\n".join(lines) or json.dumps(arguments, indent=1, ensure_ascii=False)
    return f"--- {path}\n+++ {path}\n{body}"


def tool_bundle(block: ToolBlock, *, running_for: float | None = None) -> Bundle:
    """A tool call: name, argument summary, state, how long it ran (``running_for``: seconds
    it has been running so far), the calls made inside it (codemode), and the end of its
    output."""
    return {
        "text/html": _tool_html(block, running_for),
        "text/plain": _tool_plain(block, running_for),
    }


def elapsed(seconds: float) -> str:
    """``45 s``, ``2 min 5 s``: how long something has been going on."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _tool_parts(block: ToolBlock, running_for: float | None) -> tuple[str, str, str, str]:
    """The name, argument summary, state badge (with the time it ran) and shown output."""
    label, _ = _BADGES[block.state]
    if block.duration_ms is not None:
        label += f" in {_duration(block.duration_ms)}"
    elif running_for is not None and block.state == "running":
        label += f" {elapsed(running_for)}"
    output, hidden = output_tail(clean_text(block.output).rstrip())
    hidden += block.output_cut  # what a transcript had already cut (a replayed cell)
    marker = f"… {hidden:,} more characters\n" if hidden and output else ""
    return visible_controls(block.name), tool_summary(block), label, marker + output


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def kernel_code(block: ToolBlock) -> str | None:
    """The code of a kernel tool call that carries code (run, or proposed as a cell)."""
    code = block.arguments.get("code")
    return code if block.name in CODE_TOOLS and isinstance(code, str) else None


def _tool_html(block: ToolBlock, running_for: float | None = None) -> str:
    name, summary, label, output = _tool_parts(block, running_for)
    header = f"<b>{html.escape(name)}</b>"
    if summary:
        header += f" <code>{html.escape(summary)}</code>"
    header += f' <span style="color: {_BADGES[block.state][1]}">{html.escape(label)}</span>'
    if block.approval:
        header += f" · <i>{html.escape(visible_controls(block.approval))}</i>"
    calls = "".join(_tool_html(call) for call in block.calls)
    if calls:  # drawn inside the parent, indented under a rule
        style = "margin: 0.2em 0 0 1em; padding-left: 0.6em; border-left: 2px solid #ccc"
        calls = f'<div style="{style}">{calls}</div>'
    code = kernel_code(block)
    shown = _highlighted(code) if code is not None else ""
    if block.diff:
        shown += _diff_html(block.diff)
    pre = ""
    if output:
        style = "margin: 0.2em 0 0 1em; max-height: 30em; overflow: auto; white-space: pre-wrap"
        pre = f'<pre style="{style}">{html.escape(output)}</pre>'
        if block.name in KERNEL_TOOLS:
            # The code's own output is in the cell below the block (live); this is what Pi
            # read, kept for the record and for a replayed cell.
            pre = f"<details><summary>What Pi got back</summary>{pre}</details>"
    return f"<div>{header}{calls}{shown}{pre}</div>"


_DIFF_STYLES = {
    "+": "color: #1a7f37; background: #e6ffec",
    "-": "color: #cf222e; background: #ffebe9",
    "@": "color: #6e7781",
}


def _diff_html(diff: str) -> str:
    """An edit's diff, coloured by line (escaped text only); open when short."""
    lines = visible_controls(diff).rstrip("\n").split("\n")
    body = []
    added = removed = 0
    for line in lines:
        header = line.startswith(("+++", "---"))
        added += line.startswith("+") and not header
        removed += line.startswith("-") and not header
        style = "font-weight: bold" if header else _DIFF_STYLES.get(line[:1], "")
        body.append(
            f'<span style="{style}">{html.escape(line)}</span>' if style else html.escape(line)
        )
    opened = " open" if len(lines) <= DIFF_OPEN_LINES else ""
    style = "margin: 0.2em 0 0 1em; max-height: 30em; overflow: auto; white-space: pre"
    summary = f"Diff: {added} line{'s' * (added != 1)} added, {removed} removed"
    return f'<details{opened}><summary>{summary}</summary><pre style="{style}">' + (
        "\n".join(body) + "</pre></details>"
    )


@cache
def _pygments() -> tuple[PythonLexer, HtmlFormatter[str]]:
    """One lexer and one formatter for every block: a formatter builds its style table
    when made (half a millisecond), and the block of a call is drawn before the call runs.
    Imported here, at the first block, not when the kernel starts (6 ms of a cold start)."""
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return PythonLexer(), HtmlFormatter(noclasses=True, nowrap=True)


def _highlighted(code: str) -> str:
    """Python, coloured with inline styles (no stylesheet needed; Pygments escapes it)."""
    from pygments import highlight

    body = highlight(visible_controls(code), *_pygments())
    style = "margin: 0.2em 0 0 1em; padding: 0.3em; background: #f6f8fa; white-space: pre-wrap"
    return f'<pre style="{style}">{body}</pre>'


def _tool_plain(block: ToolBlock, running_for: float | None = None) -> str:
    name, summary, label, output = _tool_parts(block, running_for)
    plain = f"[tool {name}]" + (f" {summary}" if summary else "") + f" — {label}"
    if block.approval:
        plain += f" · {visible_controls(block.approval)}"
    code = kernel_code(block)
    lines = visible_controls(code).split("\n") if code is not None else []
    lines += visible_controls(block.diff).splitlines()
    lines += [line for call in block.calls for line in _tool_plain(call).splitlines()]
    lines += output.splitlines()
    if lines:
        plain += "\n" + "\n".join(f"    {line}" if line else "" for line in lines)
    return plain
