"""Does shown output run script?  Checked the way JupyterLab would show it.

Markdown is rendered with marked (the Markdown library JupyterLab uses, installed here as a
dependency of Pi), then every piece of HTML is searched for script-capable tags, event
handler attributes and script links.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from html.parser import HTMLParser

from tests.support.pis import REPO

# What model or tool text may try: each must stay inert wherever pi-kernel shows or writes it.
PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( java&#x73;cript:alert(1))",
    "[x](javascript&colon;alert(1)) [y](javascript\\:alert(1))",
    "[x](<javascript:alert(1)>)",
    "![i](javascript:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[x][r]\n\n[r]:\n  vbscript:msgbox(1)",
    "<javascript:alert(1)>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    # marked ends a list item's code fence at an unindented line, whatever CommonMark says...
    "- a\n\n  ```\n<img src=x onerror=alert(1)>\n  ```",
    # ...closes a fence with "```~"...
    "```\nok\n```~\n<img src=x onerror=alert(1)>\n```",
    # ...reads this inline code as a link target...
    "[x](`)<img src=x onerror=alert(1)>`)",
    # ...and sees a fence where an indented line was meant to open one.
    "    ```python\n```\n    [x](`)<img src=x onerror=alert(1)>`)\n"
    "```~\n- [x](javascript:alert(1))",
    # Markdown goes on inside an HTML element.
    "`<b>[x](javascript:alert(1))</b>`",
]

MARKED_TIMEOUT = 60.0
"""Seconds node may take to render a batch of Markdown with marked."""


_MARKED = """
import { marked } from "marked";
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  process.stdout.write(JSON.stringify(JSON.parse(input).map((text) => marked.parse(text))));
});
"""


def marked(texts: list[str]) -> list[str]:
    """HTML for each Markdown text, as JupyterLab's Markdown renderer would produce it."""
    result = subprocess.run(
        ["node", "--input-type=module", "-e", _MARKED],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=MARKED_TIMEOUT,
        check=True,
    )
    rendered: list[str] = json.loads(result.stdout)
    return rendered


class _ActiveContent(HTMLParser):
    """Collects whatever in a piece of HTML could run script."""

    ACTIVE_TAGS = frozenset({"script", "iframe", "object", "embed", "base", "form", "meta"})
    URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "srcdoc":
                self.found.append(f"<{tag} {name}=...>")
            elif name in self.URL_ATTRIBUTES and value is not None:
                target = re.sub(r"[\x00-\x20\x7f]+", "", value).lower()
                if target.startswith(("javascript:", "vbscript:", "data:")):
                    self.found.append(f"<{tag} {name}={value!r}>")


def active_content(bundles: list[Mapping[str, str]]) -> list[str]:
    """Script-capable tags, event handlers and script links in these bundles, once shown."""
    pages = [bundle["text/html"] for bundle in bundles if "text/html" in bundle]
    pages += marked([bundle["text/markdown"] for bundle in bundles if "text/markdown" in bundle])
    found: list[str] = []
    for page in pages:
        parser = _ActiveContent()
        parser.feed(page)
        parser.close()
        found += parser.found
    return found
