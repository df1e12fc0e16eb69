"""The Pi kernel: a Jupyter kernel whose cells are Pi prompts.

``PiKernel`` is IPython's kernel with one change at the front of the input pipeline: a cell
whose first line does not start with ``%`` or ``!`` becomes a ``%%pi`` cell, so it goes
through exactly the magic's path (one session per kernel, the same renderer and picker).
Magics and shell lines work as in IPython, and Python is one marker away: a cell starting
with a ``%%py`` line runs the rest as ordinary IPython code.

The kernel sits above the magics it drives: it loads them as ``%load_ext pi_magics`` would
and uses their small public surface (``use_python_marker``, ``list_models``,
``list_commands``, ``subcommands``), typed.

Run with ``python -m pi_kernel.kernel -f CONNECTION_FILE`` (what the kernelspec does).
Which lines are prompts, and what completion completes, is decided in ``routing``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import List

from pi_magics import PiMagics, loaded_magics

from .. import __version__
from ..rpc.errors import PiError
from ..rpc.launch import CHECKOUT
from ..rpc.protocol import ModelInfo
from .routing import PYTHON_MARKER, cell_kind, completion_target, route_cell, token_at

BANNER = f"""\
Pi kernel {__version__}: each cell is a prompt for Pi (the answer streams into the cell).
  %%py        as a cell's first line: the rest of the cell is Python
  %pi help    what %pi does: {{subcommands}}
  %magics and !shell lines work as in IPython.
Questions from Pi's extensions are asked here and answered at the input prompt."""
"""The kernel_info banner; ``{subcommands}`` is filled from the magics' own table."""


def _help_links() -> list[dict[str, str]]:
    links = [{"text": "Pi", "url": "https://pi.dev"}]
    readme = CHECKOUT / "README.md" if CHECKOUT is not None else None
    if readme is not None and readme.is_file():  # an installed wheel has no README to point to
        links.insert(0, {"text": "pi-kernel README", "url": readme.as_uri()})
    return links


def describe_model(model: ModelInfo) -> str:
    """A model's details for inspection: what Pi reports, nothing assumed."""
    lines = [f"{model.ref}" + (f" — {model.name}" if model.name else "")]
    if model.api:
        lines.append(f"API:            {model.api}")
    if model.context_window:
        lines.append(f"Context window: {model.context_window:,} tokens")
    if model.max_tokens:
        lines.append(f"Max output:     {model.max_tokens:,} tokens")
    if model.input:
        lines.append(f"Input:          {', '.join(model.input)}")
    lines.append(f"Reasoning:      {'yes' if model.reasoning else 'no'}")
    if model.cost is not None:
        cost = model.cost
        lines.append(
            f"Cost per 1M:    ${cost.input:g} in, ${cost.output:g} out, "
            f"${cost.cache_read:g} cache read, ${cost.cache_write:g} cache write"
        )
    return "\n".join(lines)


@contextmanager
def _without_debugpy() -> Iterator[None]:
    """While the kernel starts, make ``import debugpy`` fail as if debugpy were missing.

    The Pi kernel offers no debugger (its kernelspec says ``"debugger": false``), yet a new
    ``IPythonKernel`` imports ``ipykernel.debugger`` (its ``debugger_class`` trait), which
    imports debugpy: about 55 ms of CPU before the kernel can take its first cell, a quarter
    of what the Pi kernel adds to a cold start.  ``None`` in ``sys.modules`` is Python's way
    to refuse an import; ``ipykernel.debugger`` takes it as "no debugpy" (once: the module
    stays imported) and the kernel starts without a debugger.  The entry is removed at once:
    Python run in the kernel imports debugpy as usual.
    """
    if "debugpy" in sys.modules:  # already paid for: nothing to spare
        yield
        return
    sys.modules["debugpy"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("debugpy", "") is None:
            del sys.modules["debugpy"]


class PiKernel(IPythonKernel):
    """IPython's kernel, with prompts for Pi as the default cell language."""

    implementation = "pi-kernel"
    implementation_version = __version__
    banner = ""  # shadows IPythonKernel's property; set once the magics are loaded
    language_info = {  # noqa: RUF012 (ipykernel reads it as a plain class attribute)
        "name": "markdown",
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "pygments_lexer": "markdown",
        "codemirror_mode": "markdown",
    }
    help_links = List(_help_links()).tag(config=True)

    def __new__(cls, *args: Any, **kwargs: Any) -> PiKernel:
        # traitlets resolves ``debugger_class`` (imports ipykernel.debugger) in ``__new__``.
        with _without_debugpy():
            kernel: PiKernel = super().__new__(cls, *args, **kwargs)
        return kernel

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        assert self.shell is not None
        # First in the pipeline: before IPython strips prompts or reads cell magics.
        self.shell.input_transformers_cleanup.insert(0, route_cell)
        self.magics: PiMagics = loaded_magics(self.shell)
        self.magics.use_python_marker(PYTHON_MARKER)  # Pi's Python must not become a prompt
        self.banner = BANNER.replace("{subcommands}", ", ".join(self.magics.subcommands))

    # IPythonKernel answers completion synchronously; the base class declares it async.
    def do_complete(  # type: ignore[override]
        self, code: str, cursor_pos: int | None
    ) -> dict[str, Any]:
        """Slash commands, ``%pi`` subcommands and model ids from Pi; IPython's otherwise."""
        cursor = len(code) if cursor_pos is None else cursor_pos
        target = completion_target(code, cursor)
        if target is None:
            complete = super().do_complete
            reply: dict[str, Any] = complete(code, cursor_pos)  # type: ignore[no-untyped-call]
            return reply
        metadata: dict[str, Any] = {}
        try:
            candidates = self._candidates(target.kind)
        except PiError as exc:
            # Completion has no place for an error: the reply carries it for whoever looks.
            candidates, metadata["pi_error"] = [], str(exc)
        return {
            "matches": [c for c in candidates if c.startswith(target.prefix)],
            "cursor_start": target.start,
            "cursor_end": cursor,
            "metadata": metadata,
            "status": "ok",
        }

    def do_is_complete(self, code: str) -> dict[str, Any]:  # type: ignore[override]
        """A prompt is complete as typed (a console sends it on Enter); Python and magics
        follow IPython's rules."""
        if code.strip() and cell_kind(code.lstrip().partition("\n")[0].strip()) == "prompt":
            return {"status": "complete"}
        reply: dict[str, Any] = super().do_is_complete(code)  # type: ignore[no-untyped-call]
        return reply

    def do_inspect(  # type: ignore[override]  # sync in IPythonKernel, as do_complete
        self,
        code: str,
        cursor_pos: int | None,
        detail_level: int = 0,
        omit_sections: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Shift-Tab on a model id in a prompt or ``%%pi`` line: what Pi says about it."""
        cursor = len(code) if cursor_pos is None else cursor_pos
        if completion_target(code, cursor) is None:
            inspect = super().do_inspect
            reply: dict[str, Any] = inspect(  # type: ignore[no-untyped-call]
                code, cursor_pos, detail_level, omit_sections
            )
            return reply
        token = token_at(code, cursor)
        nothing: dict[str, Any] = {"status": "ok", "found": False, "data": {}, "metadata": {}}
        if "/" not in token:
            return nothing
        try:
            models = self.magics.list_models()
        except PiError as exc:
            return {**nothing, "metadata": {"pi_error": str(exc)}}
        for model in models:
            if model.ref == token:
                text = describe_model(model)
                return {**nothing, "found": True, "data": {"text/plain": text}}
        return nothing

    def _candidates(self, kind: str) -> list[str]:
        if kind == "subcommand":
            return list(self.magics.subcommands)
        if kind == "slash":
            return sorted(f"/{command.name}" for command in self.magics.list_commands())
        if kind == "model":
            return sorted(model.ref for model in self.magics.list_models())
        return []  # prose for Pi: nothing to complete
