"""A real Jupyter kernel driven through jupyter_client, as a frontend would drive it.

``execute`` sends a cell and collects what the frontend would see: the reply, the outputs
(with ``update_display_data`` applied to the output it targets) and how many bytes of
display data crossed the wire.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import psutil
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.support.processes import is_pi

KERNEL_READY_TIMEOUT = 60.0
"""Seconds for a kernel to start and answer kernel_info on a busy 2-core machine."""
CELL_TIMEOUT = 60.0
"""Seconds any one test cell may take before the test fails."""
DISPLAY_MESSAGES = ("display_data", "update_display_data")
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
PORTS_PER_WORKER = 3000
"""Each pytest-xdist worker takes its own slice of ports for its kernels."""
INTERRUPT_BOUND = 1.0
"""The issues' bound: an interrupted cell ends within this many seconds."""


def _port_slice() -> Iterator[int]:
    """This process's kernel ports, round and round: a slice, one per xdist worker, of the
    ports below the system's ephemeral range."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    end = low - int(worker or 0) % 4 * PORTS_PER_WORKER
    return itertools.cycle(range(end - PORTS_PER_WORKER, end))


_ports = _port_slice()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pinned_ports(manager: KernelManager) -> KernelManager:
    """``manager``, set to start its kernel on five free ports of this process's slice.

    jupyter_client picks a kernel's ports by binding port 0 and letting go: ephemeral ports,
    which any outgoing connection (Pi to the scripted model, a browser to Lab) may take before
    the kernel binds them; the kernel then fails to bind and hangs (ipykernel's IOPub thread
    keeps it alive), and the test waits out its 60 s.  Below the ephemeral range only an
    explicit bind competes, and each xdist worker keeps to its own slice.  (``cache_ports``
    off: else jupyter_client replaces these with picks of its own as the kernel starts.)
    """
    chosen: list[int] = []
    for candidate in _ports:
        if _free(candidate):
            chosen.append(candidate)
        if len(chosen) == len(PORT_NAMES):
            break
    manager.cache_ports = False
    for name, port in zip(PORT_NAMES, chosen, strict=True):
        setattr(manager, name, port)
    return manager


@dataclass
class CellRun:
    """What a frontend saw for one executed cell."""

    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    display_bytes: int = 0
    seconds: float = 0.0
    input_requests: list[dict[str, Any]] = field(default_factory=list)
    """The ``input_request`` messages, in order (their headers say when each was sent)."""
    clear_pending: bool = False
    """A ``clear_output(wait=True)`` came: the next output clears the cell first."""

    @property
    def input_prompts(self) -> list[str]:
        """The prompts of the input requests, in order."""
        return [str(request["content"]["prompt"]) for request in self.input_requests]

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    def text(self, mime: str = "text/plain") -> str:
        """Every output's ``mime`` data (and streams, for text/plain), joined."""
        parts = []
        for output in self.outputs:
            if output["output_type"] == "stream" and mime == "text/plain":
                parts.append(output["text"])
            elif "data" in output and mime in output["data"]:
                parts.append(output["data"][mime])
        return "\n".join(parts)

    @property
    def error(self) -> dict[str, Any] | None:
        return next((out for out in self.outputs if out["output_type"] == "error"), None)

    @property
    def error_text(self) -> str:
        """What the user reads of a failure: the error output, or IPython's one-line
        ``UsageError`` on stderr."""
        if self.error is not None:
            return "\n".join(self.error["traceback"])
        return "".join(
            out["text"]
            for out in self.outputs
            if out["output_type"] == "stream" and out["name"] == "stderr"
        )


MAGICS = 'get_ipython().magics_manager.registry["PiMagics"]'
"""The kernel's ``PiMagics``, as an expression for ``execute`` and ``evaluate``."""


def pi_kernel_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pi_kernel ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pi_kernel", *args], capture_output=True, text=True, check=False
    )


def short_failure(run: CellRun, *, lines: int = 8) -> str:
    """An expected failure as the user reads it: the cell failed, in at most ``lines`` lines
    and without a traceback.  Returns the text."""
    assert run.status == "error"
    text = run.error_text.strip()
    assert "Traceback" not in text, text
    assert 0 < len(text.splitlines()) <= lines, text
    return text


class KernelHarness:
    """One kernel process; ``execute`` cells in it; ``shutdown`` when done."""

    def __init__(self, *, env: dict[str, str], cwd: Path, kernel_name: str = "python3") -> None:
        self.kernel_name = kernel_name
        self.manager = pinned_ports(KernelManager(kernel_name=kernel_name))
        self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)

    @property
    def pid(self) -> int:
        provisioner = self.manager.provisioner
        assert provisioner is not None
        return int(provisioner.process.pid)  # type: ignore[attr-defined]

    def execute(
        self,
        code: str,
        *,
        timeout: float = CELL_TIMEOUT,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        answer: Callable[[str], str] | None = None,
        cell_id: str | None = None,
    ) -> CellRun:
        """Run ``code``; with ``answer``, the frontend allows stdin and ``answer(prompt)``
        replies to each input request (kept in ``run.input_requests``); ``cell_id``: the
        cell's id, as JupyterLab sends it (in the request's metadata)."""
        started = time.monotonic()
        msg_id = self._send_execute(code, allow_stdin=answer is not None, cell_id=cell_id)
        run = CellRun(reply={})
        by_display_id: dict[str, dict[str, Any]] = {}
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish within {timeout} s: {code[:60]!r}")
            if answer is not None:
                self._answer_input(run, answer)
            try:
                message = self.client.get_iopub_msg(
                    timeout=remaining if answer is None else min(remaining, 0.05)
                )
            except Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            run.messages.append(message)
            if on_message is not None:
                on_message(message)
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            _apply(run, by_display_id, kind, content)
        run.reply = self.reply_to(msg_id, timeout=max(1.0, deadline - time.monotonic()))
        run.seconds = time.monotonic() - started
        return run

    def _send_execute(self, code: str, *, allow_stdin: bool, cell_id: str | None) -> str:
        if cell_id is None:
            return str(self.client.execute(code, allow_stdin=allow_stdin))
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        message = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(message)
        return str(message["header"]["msg_id"])

    def evaluate(self, expression: str) -> Any:
        """``expression``'s value in the kernel, through JSON (as Python in the Pi kernel)."""
        python = "%%py\n" if self.kernel_name == "pi" else ""
        run = self.execute(f"{python}import json as _json\nprint(_json.dumps({expression}))")
        assert run.status == "ok", run.error_text or run.outputs
        return json.loads(run.text())

    def reply_to(self, msg_id: str, *, timeout: float = CELL_TIMEOUT) -> dict[str, Any]:
        """The shell reply to request ``msg_id``, as a frontend matches it: by its parent.

        Never "the next shell message": ``wait_for_ready`` sends a ``kernel_info_request``
        every second until one is answered, so on a busy machine late ``kernel_info_reply``s
        of start-up are still queued when the first real request goes out.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no shell reply to {msg_id} within {timeout} s")
            message = self.client.get_shell_msg(timeout=remaining)
            if message["parent_header"].get("msg_id") == msg_id:
                return message

    def _answer_input(self, run: CellRun, answer: Callable[[str], str]) -> None:
        try:
            request = self.client.get_stdin_msg(timeout=0)
        except Empty:
            return
        if request["msg_type"] == "input_request":
            run.input_requests.append(request)
            self.client.input(answer(request["content"]["prompt"]))

    def pis(self) -> list[psutil.Process]:
        """The kernel's Pi processes (children of any depth)."""
        children = psutil.Process(self.pid).children(recursive=True)
        return [child for child in children if is_pi(child)]

    def wait_for_pi(self, timeout: float = 30.0) -> psutil.Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.pis()
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError("the kernel started no Pi")

    def execute_interrupted(
        self, code: str, *, cell_id: str | None = None
    ) -> tuple[CellRun, float]:
        """Run ``code``, interrupt the kernel at its first display output (as the stop
        button would once text shows); return the run and the seconds from the interrupt
        to the cell's end."""
        interrupted_at: list[float] = []

        def interrupt_on_first_display(message: dict[str, Any]) -> None:
            if not interrupted_at and message["msg_type"] in DISPLAY_MESSAGES:
                interrupted_at.append(time.monotonic())
                self.interrupt()

        run = self.execute(code, on_message=interrupt_on_first_display, cell_id=cell_id)
        assert interrupted_at, "the cell ended before showing anything to interrupt"
        return run, time.monotonic() - interrupted_at[0]

    def restart(self, *, now: bool = False) -> None:
        """Restart as a frontend's restart button does (``now``: kill it, no shutdown)."""
        self.manager.restart_kernel(now=now)
        self.client.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        """Shut the kernel down as a frontend does (a second call does nothing)."""
        if self.manager.has_kernel:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=False)


def _apply(
    run: CellRun, by_display_id: dict[str, dict[str, Any]], kind: str, content: dict[str, Any]
) -> None:
    if kind == "clear_output":  # as a frontend clears: at once, or (wait) at the next output
        run.clear_pending = bool(content.get("wait"))
        if not run.clear_pending:
            run.outputs.clear()
        return
    if run.clear_pending and kind in ("display_data", "stream", "execute_result", "error"):
        run.clear_pending = False
        run.outputs.clear()
    display_id = content.get("transient", {}).get("display_id")
    if kind in ("display_data", "update_display_data"):
        run.display_bytes += len(json.dumps(content["data"]))
    if kind == "display_data":
        output = {
            "output_type": "display_data",
            "data": content["data"],
            "metadata": content.get("metadata", {}),
        }
        run.outputs.append(output)
        if display_id:
            by_display_id[display_id] = output
    elif kind == "update_display_data" and display_id in by_display_id:
        by_display_id[display_id]["data"] = content["data"]
    elif kind == "stream":
        run.outputs.append(
            {"output_type": "stream", "name": content["name"], "text": content["text"]}
        )
    elif kind == "execute_result":
        run.outputs.append(
            {
                "output_type": "execute_result",
                "data": content["data"],
                "metadata": content.get("metadata", {}),
            }
        )
    elif kind == "error":
        run.outputs.append({"output_type": "error", **content})


@contextmanager
def running_kernel(
    *, env: dict[str, str], cwd: Path, kernel_name: str = "python3"
) -> Iterator[KernelHarness]:
    kernel = KernelHarness(env=env, cwd=cwd, kernel_name=kernel_name)
    try:
        yield kernel
    finally:
        kernel.shutdown()


def run_notebook(
    cells: list[str], *, env: dict[str, str], path: Path, kernel_name: str = "python3"
) -> Any:
    """Execute ``cells`` as a new notebook with nbclient (as papermill and CI do) in
    ``path``'s directory, save it to ``path``, read it back and validate it."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells]
    )
    return execute_notebook(notebook, env=env, path=path, kernel_name=kernel_name)


def execute_notebook(
    notebook: Any,
    *,
    env: dict[str, str],
    path: Path,
    kernel_name: str = "python3",
    prepare: Callable[[NotebookClient], None] | None = None,
) -> Any:
    """Execute ``notebook`` with nbclient in ``path``'s directory (``prepare`` may set the
    client's hooks first), save it to ``path``, read it back and validate it."""
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
    )
    pinned_ports(client.create_kernel_manager())  # still the client's own, to shut down
    if prepare is not None:
        prepare(client)
    client.execute(env=env)
    nbformat.write(notebook, path)
    saved = nbformat.read(path, as_version=4)
    nbformat.validate(saved)
    return saved


def install_pi_kernelspec(prefix: Path) -> str:
    """Install the Pi kernelspec under ``prefix``; the directory to put on JUPYTER_PATH."""
    installed = pi_kernel_cli("install", "--prefix", str(prefix))
    assert installed.returncode == 0, installed.stderr
    return str(prefix / "share" / "jupyter")
