"""The README's main command (``scripts/start.sh``), run as a new user would run it.

Headless, it executes the tour notebook: on the local demo model when there are no
credentials, on the user's Pi when there are.  In JupyterLab mode, stopping it stops Lab,
its kernels, their Pi and the model server.  No test here writes outside its tmp_path: HOME
is a fresh directory in each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest

from pi_kernel import variables
from pi_kernel.launcher import local_model
from pi_kernel.launcher.start import DEFAULT_NOTEBOOK
from pi_kernel.transcript import NoticePart, Transcript, transcripts_in
from tests.support.new_user import broken_weights, new_user_env
from tests.support.pi_env import PiEnv
from tests.support.pis import REPO
from tests.support.processes import is_pi, processes_of
from tests.support.scripted_llm import ScriptedLLM, text

# The main command: JupyterLab or nbclient, kernels, Pi, the model server.  The demo model's
# llama.cpp takes a thread per core: one test running it at a time (xdist's loadgroup).
pytestmark = [pytest.mark.live, pytest.mark.xdist_group("demo-model")]

START_SH = REPO / "scripts" / "start.sh"
HEADLESS_TIMEOUT = 900
"""Seconds for a headless tour: Pi's start, the kernel's, eight cells on a 135M model."""
LAB_TIMEOUT = 90.0
"""Seconds for JupyterLab (and then a Pi kernel's Pi) to come up on 2 slow cores."""
STOP_TIMEOUT = 60.0
"""Seconds for the main command to stop Lab, kernels, Pi and the model server."""
TOUR_PI_CELLS = 4


def start_headless(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``scripts/start.sh --headless``; return its result and the executed notebook."""
    result = subprocess.run(
        ["bash", str(START_SH), "--headless"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HEADLESS_TIMEOUT,
        check=False,
    )
    found = re.search(r"^Executed notebook: (.+)$", result.stdout, re.MULTILINE)
    assert found, f"no executed notebook in:\n{result.stdout}\n{result.stderr}"
    return result, Path(found.group(1))


def shown(cell: Any) -> str:
    """A cell's outputs as plain text: what a reader of the saved notebook sees."""
    return "\n".join(
        str(output.get("data", {}).get("text/plain", output.get("text", "")))
        for output in cell.get("outputs", [])
    )


def answers(notebook: Path) -> list[Transcript]:
    document = nbformat.read(notebook, as_version=4)
    return [t for cell in document.cells for t in transcripts_in(cell.get("outputs", []))]


@pytest.mark.timeout(HEADLESS_TIMEOUT + 60)
def test_without_credentials_the_headless_tour_runs_on_the_local_model(tmp_path: Path):
    env = new_user_env(tmp_path)
    home = Path(env["HOME"])
    result, notebook = start_headless(env)
    assert result.returncode == 0, result.stderr
    assert "Models from the local demo model, because there is no Pi setup" in result.stdout
    assert notebook.is_relative_to(home / ".local" / "state" / "pi-kernel" / "runs")
    transcripts = answers(notebook)
    assert len(transcripts) == TOUR_PI_CELLS
    for transcript in transcripts:
        assert transcript.model_ref == local_model.MODEL_REF
        assert transcript.status == "completed"
        assert transcript.text.strip()
        # It calls no tools: the tool cell's answer, like every other, says so above it.
        notices = [part.text for part in transcript.blocks if isinstance(part, NoticePart)]
        assert any("cannot call tools: it read no file" in text for text in notices)
        assert transcript.usage.input > 0  # the server reports usage in its stream
        assert transcript.usage.output > 0
    footers = [  # each answer's footer, as a reader of the saved notebook sees it
        re.findall(r"smollm2-135m-instruct · thinking off · ([^·]+) ·", shown(cell))
        for cell in nbformat.read(notebook, as_version=4).cells
        if cell.source.startswith("%%pi")
    ]
    assert [len(found) for found in footers] == [1] * TOUR_PI_CELLS, footers
    for (tokens,) in footers:
        assert re.fullmatch(r"[\d,]+ in / [\d,]+ out tokens", tokens.strip()), footers
    assert (home / ".local" / "state" / "pi-kernel" / "local-model.log").is_file()
    assert not (home / ".pi").exists()


@pytest.mark.timeout(HEADLESS_TIMEOUT + 60)
def test_with_credentials_the_headless_tour_uses_them_and_no_local_model(
    pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path
):
    replies = [f"Scripted answer {n}." for n in range(1, TOUR_PI_CELLS + 1)]
    llm.enqueue(*(text(reply) for reply in replies))
    state = tmp_path / "state"
    result, notebook = start_headless({**pi_env.env, variables.STATE_DIR: str(state)})
    assert result.returncode == 0, result.stderr
    assert f"Models from your Pi agent dir {pi_env.agent_dir}." in result.stdout
    assert "local demo model" not in result.stdout
    assert [t.text for t in answers(notebook)] == replies
    assert {t.model_ref for t in answers(notebook)} == {"scripted/plain"}
    assert len(llm.requests) == TOUR_PI_CELLS
    assert not (state / "local-model.log").exists()
    assert not (state / "agent").exists()
    assert not (pi_env.home / ".pi").exists()
    # The tour's kernels listen on Unix sockets: nothing for ipykernel to warn about.
    assert "without encryption" not in result.stdout + result.stderr


@pytest.mark.timeout(HEADLESS_TIMEOUT + 60)
def test_when_the_local_model_cannot_start_the_notebook_says_why(tmp_path: Path):
    env = {**new_user_env(tmp_path), "PYTHONPATH": str(broken_weights(tmp_path))}
    result, notebook = start_headless(env)
    assert result.returncode == 1
    assert "The local model server exited while starting" in result.stderr
    document = nbformat.read(notebook, as_version=4)
    first_pi_cell = next(cell for cell in document.cells if cell.source.startswith("%%pi"))
    (error,) = [out for out in first_pi_cell.outputs if out.output_type == "error"]
    shown = "\n".join(error.traceback)
    assert shown.startswith("PiNoModels: ")
    assert "The local model server exited while starting (code 1): " in shown
    assert "Traceback" not in shown
    assert not (Path(env["HOME"]) / ".pi").exists()


def test_a_missing_notebook_is_one_sentence_and_starts_nothing(tmp_path: Path):
    env = new_user_env(tmp_path)
    missing = tmp_path / "nowhere.ipynb"
    result = subprocess.run(
        [sys.executable, "-m", "pi_kernel", "start", "--headless", "--notebook", missing],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"There is no notebook {missing}; pass an existing .ipynb file.\n"
    assert list(Path(env["HOME"]).iterdir()) == []


def lab_server_info(home: Path, deadline: float) -> dict[str, Any]:
    """The running server's info file (url, token), once its API answers."""
    runtime = home / ".local" / "share" / "jupyter" / "runtime"
    while time.monotonic() < deadline:
        for info_file in runtime.glob("jpserver-*.json"):
            info = json.loads(info_file.read_text())
            try:
                api(info, "status")
            except (urllib.error.URLError, ConnectionError):
                break
            return info
        time.sleep(0.2)
    raise AssertionError(f"JupyterLab did not come up within {LAB_TIMEOUT} s")


def api(info: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{info['url'].rstrip('/')}/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"token {info['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@pytest.mark.parametrize(
    "stop",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
    ids=["ctrl-c", "sigterm", "closed-terminal"],
)
def test_stopping_the_main_command_stops_lab_kernels_pi_and_the_model_server(
    tmp_path: Path, stop: signal.Signals
):
    env = new_user_env(tmp_path)
    notebook = tmp_path / "notebooks" / DEFAULT_NOTEBOOK.name
    notebook.parent.mkdir()
    notebook.write_bytes(DEFAULT_NOTEBOOK.read_bytes())
    log = tmp_path / "start.log"
    with log.open("wb") as sink:
        command = subprocess.Popen(
            [sys.executable, "-m", "pi_kernel", "start", "--no-browser", "--notebook", notebook],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + LAB_TIMEOUT
        info = lab_server_info(Path(env["HOME"]), deadline)
        api(info, "kernels", {"name": "pi"})  # the Pi kernel starts its Pi at once
        while not any(is_pi(process) for process in processes_of(tmp_path)):
            assert time.monotonic() < deadline, "the Pi kernel's Pi did not start"
            time.sleep(0.2)
        started = processes_of(tmp_path)
        names = " ".join(" ".join(process.cmdline()) for process in started)
        assert "pi_kernel.launcher.local_server" in names
        assert "jupyterlab" in names
        os.kill(command.pid, stop)
        assert command.wait(STOP_TIMEOUT) == (130 if stop == signal.SIGINT else 128 + stop)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    _, alive = psutil.wait_procs(started, timeout=5)
    assert not alive, log.read_text()[-3000:]
    assert not (Path(env["HOME"]) / ".pi").exists()
