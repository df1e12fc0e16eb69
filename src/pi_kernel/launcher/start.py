"""The main command (``python -m pi_kernel start``): Pi in JupyterLab, on any machine.

It chooses where Pi's models come from (``backend``: the user's own Pi, or the local demo
model when there are no credentials), serves the local model when that is the choice, and
then starts JupyterLab on the tour notebook, or, with ``headless``, executes the tour with
nbclient and says where the executed copy is.  Everything it starts carries a marker in its
environment, and is stopped when it exits, however it exits.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import anyio

from .. import variables
from ..agent_dir import state_dir
from ..errors import LocalModelError, StartError
from ..kernel import kernelspec
from ..rpc import PiInstall
from ..rpc.launch import CHECKOUT
from ..rpc.processes import kill_marked, new_marker, stop_group
from ..transcript import transcripts_in
from . import local_model
from .backend import Backend, choose_backend

if TYPE_CHECKING:
    from jupyter_client.manager import KernelManager

CELL_TIMEOUT = 600.0
"""Seconds one cell of a headless run may take (the tiny model answers in well under 60)."""
DEFAULT_NOTEBOOK = CHECKOUT / "notebooks" / "tour.ipynb" if CHECKOUT is not None else None
"""The tour, which comes with the checkout (a wheel does not carry it)."""


@dataclass(frozen=True)
class Options:
    notebook: Path | None = DEFAULT_NOTEBOOK
    headless: bool = False
    output: Path | None = None
    """Headless: the directory to run the notebook in (default: a new one under runs/)."""
    open_browser: bool = True


def run(install: PiInstall, options: Options) -> int:
    """Run the main command; return its exit code."""
    if options.notebook is None:
        raise StartError(
            "The tour notebook comes with the pi-kernel checkout, not the installed package; "
            "pass --notebook FILE.ipynb."
        )
    notebook = options.notebook.expanduser().absolute()
    if not notebook.is_file():
        raise StartError(f"There is no notebook {notebook}; pass an existing .ipynb file.")
    needed = ("nbclient", "nbformat") if options.headless else ("jupyterlab",)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise StartError(
            f"The main command needs {', '.join(missing)}: install it with "
            "pip install 'pi-kernel[lab]' (scripts/install.sh does)."
        )
    state = state_dir(os.environ)
    marker = new_marker()
    with _signals_exit(), ExitStack() as stack:
        stack.callback(kill_marked, variables.MAIN, marker)
        print(f"Pi: {install.describe()}", flush=True)
        backend = anyio.run(choose_backend, install, state / "agent")
        print(f"Models from {backend.description}.", flush=True)
        env = {**backend.env, variables.MAIN: marker}
        if backend.kind == "local":
            env = _serve_local_model(stack, backend, env, state)
        if options.headless:
            return _run_headless(notebook, options.output or _new_run_dir(state), env)
        return _run_lab(notebook, env, open_browser=options.open_browser)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _serve_local_model(
    stack: ExitStack, backend: Backend, env: dict[str, str], state: Path
) -> dict[str, str]:
    agent_dir = Path(backend.env[variables.AGENT_DIR])
    local_model.clear_agent_config(agent_dir)
    log_path = state / "local-model.log"
    print(f"Starting the local demo model {local_model.MODEL_REF} (log: {log_path}).", flush=True)
    try:
        server = stack.enter_context(local_model.serving(log_path, env=env))
    except LocalModelError as problem:
        print(f"{problem.message} {problem.hint}", file=sys.stderr, flush=True)
        return {**env, variables.BACKEND_PROBLEM: problem.message}
    local_model.write_agent_config(agent_dir, server)
    print(f"Local demo model at {server.base_url}.", flush=True)
    # It calls no tools: each of its answers says so, so nothing it invents about a file
    # passes for what a tool found.
    return {**env, variables.TOOLLESS_MODELS: local_model.MODEL_REF}


def _new_run_dir(state: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return state / "runs" / f"{stamp}-{uuid.uuid4().hex[:6]}"


def _run_headless(notebook: Path, run_dir: Path, env: dict[str, str]) -> int:
    """Execute a copy of the notebook (with the files beside it) in ``run_dir``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    shutil.copytree(
        notebook.parent,
        run_dir,
        ignore=shutil.ignore_patterns("*.ipynb", "*.cassette.jsonl", ".ipynb_checkpoints"),
        dirs_exist_ok=True,
    )
    target = run_dir / notebook.name
    document = nbformat.read(notebook, as_version=4)
    print(f"Running {notebook.name} headless in {run_dir} ...", flush=True)
    failure: str | None = None
    try:
        with _local_kernel(document.metadata.get("kernelspec", {}).get("name", "python3")) as km:
            client = NotebookClient(
                document,
                km=km,
                timeout=CELL_TIMEOUT,
                resources={"metadata": {"path": str(run_dir)}},
            )
            client.execute(env=env)
    except CellExecutionError as error:
        failure = f"{error.ename}: {error.evalue}".strip()
    except (CellTimeoutError, DeadKernelError) as error:
        failure = (str(error).strip() or type(error).__name__).splitlines()[0]
    finally:
        nbformat.write(document, target)
    answers = [t for cell in document.cells for t in transcripts_in(cell.get("outputs", []))]
    for transcript in answers:
        first_line = transcript.text.splitlines()[0] if transcript.text else "(no text)"
        print(f"  {transcript.model_ref}: {first_line[:100]}")
    print(f"Executed notebook: {target}")
    if failure is not None:
        print(f"A cell failed: {failure}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _local_kernel(kernel_name: str) -> Iterator[KernelManager]:
    """A kernel manager whose kernel listens on Unix sockets in a private directory.

    The kernel and its only client run on this machine for this user, so there is nothing
    to put on TCP: sockets in a ``0700`` directory are reachable by this user alone, and
    ipykernel (rightly) warns about unencrypted TCP, a warning the user could not act on.
    """
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="pi-kernel-") as sockets:
        yield KernelManager(
            kernel_name=kernel_name,
            transport="ipc",
            connection_file=os.path.join(sockets, "kernel.json"),
            ip=os.path.join(sockets, "kernel"),
        )


def _run_lab(notebook: Path, env: dict[str, str], *, open_browser: bool) -> int:
    """JupyterLab on the notebook's directory, until it exits or we are stopped."""
    kernelspec.install(prefix=sys.prefix)  # the Pi kernel, beside the tour's Python kernel
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        str(notebook),
        f"--ServerApp.root_dir={notebook.parent}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if not open_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:  # containers and CI machines: Jupyter refuses root unless told
        argv.append("--allow-root")
    print("Starting JupyterLab; press Ctrl-C to stop it and everything started here.", flush=True)
    # Its own session: Ctrl-C reaches us, not Lab's "shut down? (y/n)" prompt, and we stop
    # Lab with SIGTERM, which shuts its kernels down cleanly.
    lab = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        return lab.wait()
    finally:
        stop_group(lab)


@contextmanager
def _signals_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP end the command through ``finally`` blocks, like Ctrl-C does."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
