"""The Pi kernel: a Jupyter kernel whose cells are Pi prompts.

``PiKernel`` is IPython's kernel with one change at the front of the input pipeline: a cell
whose first line does not start with ``%`` or ``!`` becomes a ``%%pi`` cell, so it goes
through exactly the magic's path (one session per kernel, the same renderer and picker).
Magics and shell lines work as in IPython, and Python is one marker away: a cell starting
with a ``%%py`` line runs the rest as ordinary IPython code.

The magics are loaded by extension name, as a user would with ``%load_ext``: the notebook
face depends on the engine, and this module only asks IPython for it.

Run with ``python -m pi_kernel.kernel -f CONNECTION_FILE`` (what the kernelspec does).
"""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import List

from . import __version__
from .rpc.launch import PROJECT_ROOT

PYTHON_MARKER = "%%py"
"""A cell's first line that makes the rest of the cell Python."""
BANNER = f"""\
Pi kernel {__version__}: each cell is a prompt for Pi (the answer streams into the cell).
  %%py        as a cell's first line: the rest of the cell is Python
  %pi help    the subcommands: status, models, picker, new, abort, restart
  %magics and !shell lines work as in IPython."""


def _help_links() -> list[dict[str, str]]:
    links = [{"text": "Pi", "url": "https://pi.dev"}]
    readme = PROJECT_ROOT / "README.md"
    if readme.is_file():  # a checkout; an installed wheel has no README file to point to
        links.insert(0, {"text": "pi-kernel README", "url": readme.as_uri()})
    return links


def route_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: a prompt becomes ``%%pi``; ``%%py`` cells become Python."""
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return lines
    head = lines[first].strip()
    if head == PYTHON_MARKER:
        return lines[first + 1 :]
    if head.startswith(("%", "!")):
        return lines
    return ["%%pi\n", *lines[first:]]


class PiKernel(IPythonKernel):
    """IPython's kernel, with prompts for Pi as the default cell language."""

    implementation = "pi-kernel"
    implementation_version = __version__
    banner = BANNER
    language_info = {  # noqa: RUF012 (ipykernel reads it as a plain class attribute)
        "name": "markdown",
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "pygments_lexer": "markdown",
        "codemirror_mode": "markdown",
    }
    help_links = List(_help_links()).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        assert self.shell is not None
        # First in the pipeline: before IPython strips prompts or reads cell magics.
        self.shell.input_transformers_cleanup.insert(0, route_cell)
        self.shell.extension_manager.load_extension("pi_magics")


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=PiKernel)
