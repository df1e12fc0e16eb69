"""A real JupyterLab server for browser tests: on 127.0.0.1, in a temporary root with its
own token, config and data dirs, the Pi kernelspec installed into a temporary prefix, and
Pi pointed at the scripted LLM.  Nothing reaches past loopback: JupyterLab's news, update
checks and extension index are off, and Chromium runs with background networking disabled and every
host but 127.0.0.1 unresolvable."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from tests.support.kernels import install_pi_kernelspec
from tests.support.pi_env import PiEnv, pi_env_for
from tests.support.ports import free_ports
from tests.support.scripted_llm import ScriptedLLM

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
STARTUP_TIMEOUT = 60.0
"""Seconds JupyterLab may take to answer its status API (2 slow cores, first start)."""


@dataclass
class Lab:
    """A running JupyterLab: where it listens, its token, its root dir, Pi's environment."""

    url: str
    token: str
    root: Path
    pi_env: PiEnv
    process: subprocess.Popen[bytes]
    log: Path

    def notebook_url(self, name: str, *, app: str = "lab") -> str:
        """The notebook in JupyterLab, or (``app="notebook"``) in Jupyter Notebook 7,
        which the same server serves beside it."""
        if app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def write_notebook(self, name: str, cells: list[str], kernel: str) -> Path:
        """A notebook of code cells on ``kernel`` ("pi" or "python3"), not yet run."""
        display = {"pi": "Pi", "python3": "Python 3 (ipykernel)"}[kernel]
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in cells],
            metadata={"kernelspec": {"name": kernel, "display_name": display}},
        )
        path = self.root / name
        nbformat.write(notebook, path)
        return path

    def shutdown_kernels(self) -> None:
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_lab(base: Path, llm: ScriptedLLM) -> Lab:
    """Start JupyterLab under ``base`` (notebooks in ``base/notebooks``) and wait for it."""
    pi_env = pi_env_for(base, llm.base_url)
    jupyter_path = install_pi_kernelspec(base / "prefix")
    root = base / "notebooks"
    root.mkdir()
    config = base / "jupyter-config"
    config.mkdir()
    token = secrets.token_hex(16)
    (port,) = free_ports(1)
    settings = {
        "ServerApp": {
            "ip": "127.0.0.1",
            "port": port,
            "open_browser": False,
            "allow_root": True,  # CI's machine runs the suite as root
            "terminals_enabled": False,
        },
        "IdentityProvider": {"token": token},
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly",  # the default one searches a package index
        },
    }
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    # The page would otherwise ask whether to fetch Jupyter's news (a toast over the notebook).
    notification = base / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {
        **pi_env.env,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(base / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTER_PATH": jupyter_path,
        "JUPYTERLAB_SETTINGS_DIR": str(base / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "lab-workspaces"),
    }
    log = base / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"],
            env=env,
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, root, pi_env, process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited at start:\n{log.read_text()[-3000:]}")
        try:
            lab.api("status")
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                lab.stop()
                raise RuntimeError(f"JupyterLab did not answer in {STARTUP_TIMEOUT} s") from None
            time.sleep(0.2)
        else:
            return lab
