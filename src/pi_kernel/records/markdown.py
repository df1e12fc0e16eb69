"""Markdown that cannot run anything: what a model or a tool wrote, made safe to render.

Security-critical and pure.  ``safe_markdown`` escapes raw HTML and disarms link targets
(only http, https and mailto stay live) while keeping ordinary Markdown working: code,
lists, emphasis, links.  ``clean_text`` drops terminal escapes and control characters, which
are noise in HTML and a hazard in a terminal; ``visible_controls`` shows them instead, where
what is shown must be exactly what runs (code, commands, paths).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterator

_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Terminal escapes (colour codes from tools, or worse: titles, clipboard writes) and other
# control characters are noise in HTML and a hazard in a terminal; tabs and newlines stay.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # a quick test before _CONTROL
_OVERWRITTEN = re.compile(r"[^\n]*\r")
_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_BLANK_LINES = re.compile(r"^[ \t\r]*\n", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
# Where a link target starts: after ``](`` (inline links and images) or ``]:`` (reference
# definitions), maybe on the next line, maybe inside ``<...>``.  Labels are not parsed on
# purpose: every such spot is checked, so no label trick can hide one.
_LINK_TARGET = re.compile(r"\](?:\(|:)[ \t]*(?:\n[ \t]*)?<?")
_TARGET_START = re.compile(r"[^\s)>]*")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_PUNCTUATION_ENTITIES = {ord(mark): f"&#{ord(mark)};" for mark in string.punctuation}
_PROSE_ESCAPE = re.compile(r"<(?:https?|mailto):[^\s<>\"'`]*>|[<&]")


def clean_text(text: str) -> str:
    """``text`` without terminal escapes and control characters (tabs and newlines stay)."""
    if not _CONTROL_CHAR.search(text):
        return text
    # A lone carriage return starts its line over, as in a terminal (progress bars).
    text = _OVERWRITTEN.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub("", text)


_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e"
    r"\u2066-\u2069\ufeff]"
)
"""Characters that change how the text around them looks instead of looking like anything:
controls, and the bidirectional ones of the "Trojan Source" trick."""


def visible_controls(text: str) -> str:
    """``text`` with every control, bidirectional and zero-width character shown as a mark
    instead of obeyed: ``␍`` for a carriage return, ``␛`` for an escape (C0 controls get
    their Unicode control pictures), ``⟨U+202E⟩`` for the rest.  Tabs and newlines stay (and
    ``\r\n``, which Python reads as one newline)."""
    return _INVISIBLE.sub(_mark, text.replace("\r\n", "\n"))


def _mark(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\u27e8U+{code:04X}\u27e9"


def safe_markdown(text: str) -> str:
    """Markdown with no raw HTML and no link to a scheme other than http(s) or mailto.

    Prose gets ``<`` and ``&`` as entities (``>`` stays: it starts block quotes, and without
    ``<`` no tag can open) and its link targets checked.  Code is shown exactly as written:
    code that would be harmless even if read as prose stays Markdown, so the frontend
    highlights it; other code (with a ``<``, say) becomes ``<pre><code>`` or ``<code>`` built
    here, every punctuation mark an entity.  So nothing rests on this parser agreeing with
    the frontend's about where code starts and ends, and they do disagree: marked ends a
    list item's fence at an unindented line and reads some inline code as a link target,
    markdown-it takes a fence line with a ``|`` for a table header.
    """
    parts: list[str] = []
    for is_code, chunk in _fenced_chunks(text):
        if is_code:
            parts.append(chunk if _inert(chunk) else _fence_html(chunk))
            continue
        for is_span, piece in _code_spans(chunk):
            if not is_span:
                parts.append(_escape_prose(_disarm_links(piece)))
            elif _inert(piece):
                parts.append(piece)
            else:
                parts.append(f"<code>{_code_html(_span_content(piece))}</code>")
    return "".join(parts)


def _escape_prose(prose: str) -> str:
    if "<" not in prose and "&" not in prose:
        return prose
    return _PROSE_ESCAPE.sub(_escape_match, prose)


def _escape_match(match: re.Match[str]) -> str:
    token = match.group()
    if len(token) > 1:  # an http(s) or mailto autolink: kept, it cannot carry a script
        return token
    return "&lt;" if token == "<" else "&amp;"


def _inert(code: str) -> bool:
    """Whether code is harmless even if a frontend were to read it as prose."""
    return "<" not in code and _disarm_links(code) == code


def _disarm_links(text: str) -> str:
    """Prefix ``unsafe:`` to every link target whose scheme is not http(s) or mailto."""
    parts: list[str] = []
    done = 0
    for match in _LINK_TARGET.finditer(text):
        start = match.end()
        target = _TARGET_START.match(text, start)
        if target is not None and not _safe_target(target.group()):
            parts += [text[done:start], "unsafe:"]
            done = start
    return "".join([*parts, text[done:]])


def _safe_target(target: str) -> bool:
    # Read the target the way the most lenient reader would: entities and backslash
    # escapes decoded, whitespace and control characters dropped, case folded.
    normal = html.unescape(target).replace("\\", "")
    normal = re.sub(r"[\s\x00-\x1f\x7f]+", "", normal).lower()
    scheme = _SCHEME.match(normal)
    return scheme is None or scheme.group(1) in _SAFE_SCHEMES


def _fenced_chunks(text: str) -> Iterator[tuple[bool, str]]:
    """Split into prose and fenced code blocks (fence lines included), in order."""
    if not _may_fence(text):  # most text: no line-by-line walk
        if text:
            yield False, text
        return
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    for line in text.splitlines(keepends=True):
        if fence:
            code.append(line)
            if _closes(line, fence):
                yield True, "".join(code)
                code, fence = [], ""
            continue
        opener = _opened_fence(line)
        if opener:
            if prose:
                yield False, "".join(prose)
                prose = []
            code, fence = [line], opener
        else:
            prose.append(line)
    if prose:
        yield False, "".join(prose)
    if code:
        yield True, "".join(code)


def _may_fence(text: str) -> bool:
    return "```" in text or "~~~" in text


def _opened_fence(line: str) -> str:
    """The fence a line opens (``\\`\\`\\``` or ``~~~``...), or ``""``."""
    match = _FENCE_OPEN.match(line.rstrip("\n"))
    if match is None or (match.group(2)[0] == "`" and "`" in match.group(3)):
        return ""
    return match.group(2)


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def _fence_html(block: str) -> str:
    lines = block.splitlines(keepends=True)
    match = _FENCE_OPEN.match(lines[0].rstrip("\n"))
    assert match is not None  # _fenced_chunks starts every code chunk with its opener
    indent, fence, info = match.groups()
    body = lines[1:]
    if body and _closes(body[-1], fence):
        body = body[:-1]
    content = "".join(line[len(indent) :] if line.startswith(indent) else line for line in body)
    language = re.sub(r"[^\w+#.-]", "", info.split()[0]) if info.split() else ""
    attribute = f' class="language-{html.escape(language)}"' if language else ""
    code = _code_html(content.removesuffix("\n"))
    return f"{indent}<pre><code{attribute}>{code}</code></pre>\n"


def _code_html(code: str) -> str:
    # Markdown goes on inside an HTML element (a link written in it is a link), so every
    # punctuation mark becomes an entity: the reader sees the code, and no syntax can form.
    return code.translate(_PUNCTUATION_ENTITIES)


def _code_spans(prose: str) -> Iterator[tuple[bool, str]]:
    """Split prose into text and inline code spans (backticks included), in order."""
    done = index = 0
    while (opener := _BACKTICKS.search(prose, index)) is not None:
        index = opener.end()
        start = opener.start()
        escaped, before = False, start - 1
        while before >= 0 and prose[before] == "\\":
            escaped, before = not escaped, before - 1
        if escaped:  # an escaped backtick opens nothing (the rest of its run may)
            index = start + 1
            continue
        run = index - start
        closer = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(prose, index)
        if closer is None or _BLANK_LINE.search(prose, index, closer.start()):
            continue
        if done < start:
            yield False, prose[done:start]
        yield True, prose[start : closer.end()]
        done = index = closer.end()
    if done < len(prose):
        yield False, prose[done:]


def _span_content(span: str) -> str:
    run = len(span) - len(span.lstrip("`"))
    content = span[run:-run].replace("\n", " ")
    if content.startswith(" ") and content.endswith(" ") and content.strip():
        return content[1:-1]
    return content


def paragraph_break(lines: str) -> int | None:
    """Where ``lines`` (whole lines) can be split into two Markdown documents that render as
    the one: just after its last blank line that follows text and is outside a code fence.
    None when there is no such line."""
    if not _may_fence(lines):
        # No fence to stay out of: the cut is after the last blank line that follows text.
        last = None
        for last in _BLANK_LINES.finditer(lines):  # noqa: B007 (the last one is wanted)
            pass
        if last is None or not lines[: last.start()].strip():
            return None
        return last.end()
    return _walk_to_paragraph_break(lines)


def _walk_to_paragraph_break(lines: str) -> int | None:
    """``paragraph_break`` line by line, keeping out of fences."""
    cut = None
    fence = ""
    seen_text = False
    position = 0
    for line in lines.splitlines(keepends=True):
        position += len(line)
        if not line.endswith("\n"):
            break  # split at a character Markdown does not end lines with: stop there
        if fence:
            fence = "" if _closes(line, fence) else fence
        elif opener := _opened_fence(line):
            fence, seen_text = opener, True
        elif line.strip():
            seen_text = True
        elif seen_text:
            cut = position
    return cut
