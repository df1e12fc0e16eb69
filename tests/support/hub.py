"""A real JupyterHub on 127.0.0.1 for the deployment tests, and a client that drives it.

The hub runs as a subprocess with ``jupyterhub_config.py`` beside this file: the proxy is the
configurable-http-proxy installed under ``tests/hub`` (on the Node 22 installed beside it),
nobody logs in (users are made through the REST API), and each user's server is a local
``jupyterhub-singleuser`` process with its own home and Pi agent dir under the test's
directory.  The test acts as a hub service with its own token (``Hub.api``) and talks to the
users' servers through the proxy, as a frontend does: REST for kernels, the kernel websocket
for cells.

Every process of the deployment carries ``PI_CODING_AGENT_DIR`` under the test's directory,
the hub and its proxy too (a directory no Pi uses), so ``processes_of`` (tests.support.processes)
finds them all: ``Hub.close`` stops the hub, then kills the process group of whatever is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
import websocket

from tests.support.kernels import pi_kernel_cli
from tests.support.pi_env import write_agent_dir
from tests.support.pis import CURRENT_PI, TESTS
from tests.support.ports import free_ports
from tests.support.processes import is_pi, processes_of

HERE = TESTS / "hub"
"""The hub test's folder: its config, and its proxy installed by npm ci."""
CONFIG = HERE / "jupyterhub_config.py"
SETTINGS_ENV = "PI_KERNEL_TEST_HUB_SETTINGS"
"""Names the JSON file ``jupyterhub_config.py`` reads (the same literal is written there)."""
NODE = HERE / "node_modules" / ".bin" / "node"
PROXY = (HERE / "node_modules" / ".bin" / "configurable-http-proxy").resolve()
"""A ``#!/usr/bin/env node`` script: the machine's Node may be too old, so it runs on NODE."""

HUB_START_TIMEOUT = 60.0
"""Seconds for the hub and its proxy to answer (a cold start on a busy 2-core machine)."""
SERVER_START_TIMEOUT = 90.0
"""Seconds for a user's server to be ready after the spawn request."""
SERVER_STOP_TIMEOUT = 30.0
"""Seconds for a stopped server to be gone: SIGINT, then the spawner's SIGTERM and SIGKILL."""
HUB_STOP_TIMEOUT = 40.0
"""Seconds the hub gets on SIGTERM to stop the servers and the proxy before it is killed."""
KILLED_EXIT_TIMEOUT = 5.0
"""Seconds for SIGKILLed processes to disappear."""
REQUEST_TIMEOUT = 30.0
"""Seconds for one REST request (starting a kernel imports IPython and starts Pi)."""
CELL_TIMEOUT = 60.0
"""Seconds for one cell, from execute_request to idle and execute_reply."""
PI_START_TIMEOUT = 30.0
"""Seconds for a new kernel's pre-warmed Pi to appear."""
POLL_INTERVAL = 0.2
"""Seconds between two looks at the hub's state (it has no push for server readiness)."""
ACTIVITY_INTERVAL = 1
"""Seconds between a server's activity reports to the hub (the default is 300)."""

SANDBOXED = ("bob",)
"""Users whose Pis run in pi-kernel's sandbox (``PI_KERNEL_SANDBOX=1`` in their servers)."""
DRIVER = "pi-kernel-test"
"""The service the test acts as: it makes users, starts and stops their servers, uses them."""
DRIVER_SCOPES = ["admin:users", "admin:servers", "access:servers"]
CULLER = "idle-culler"
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
"""What jupyterhub-idle-culler's README asks for (without --cull-users)."""

# A Pi that never goes online beyond the scripted LLM (as tests.support.pi_env.isolated_env).
PI_QUIET = {"PI_OFFLINE": "1", "PI_SKIP_VERSION_CHECK": "1", "PI_TELEMETRY": "0"}

T = TypeVar("T")


@dataclass(frozen=True)
class HubUser:
    """A hub user: their directory holds their Pi agent dir (with their own key) and home."""

    name: str
    root: Path
    key: str

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def pis(self) -> list[psutil.Process]:
        return [process for process in processes_of(self.root) if is_pi(process)]


@dataclass
class CellRun:
    """One cell as a frontend on the kernel websocket saw it."""

    reply: dict[str, Any] = field(default_factory=dict)
    iopub: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    @property
    def shown(self) -> str:
        """Every string the kernel sent the notebook for this cell, each display update and
        not only the last state, one per line."""
        return "\n".join(_strings([message["content"] for message in self.iopub]))


class KernelChannels:
    """One kernel websocket: send cells, collect what comes back for them."""

    def __init__(self, connection: websocket.WebSocket, session: str) -> None:
        self.connection = connection
        self.session = session

    def send(self, code: str) -> str:
        """Send ``code`` as an execute_request; its message id."""
        request = _execute_request(code, self.session)
        self.connection.send(json.dumps(request))
        return str(request["header"]["msg_id"])

    def finish(self, msg_id: str) -> CellRun:
        """What came back for request ``msg_id`` until the kernel is idle again and has
        replied (at most CELL_TIMEOUT seconds)."""
        deadline = time.monotonic() + CELL_TIMEOUT
        run, idle = CellRun(), False
        while not (idle and run.reply):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell {msg_id} did not finish within {CELL_TIMEOUT} s")
            self.connection.settimeout(remaining)
            message = json.loads(self.connection.recv())
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["channel"] == "shell" and message["msg_type"] == "execute_reply":
                run.reply = message
            elif message["channel"] == "iopub":
                run.iopub.append(message)
                content = message["content"]
                idle = message["msg_type"] == "status" and content["execution_state"] == "idle"
        return run


class Hub:
    """A running hub (see ``running_hub``) and the test's service token for it."""

    def __init__(self, root: Path, llm_base_url: str) -> None:
        self.root = root
        self.llm_base_url = llm_base_url
        self.state = root / "hub"
        self.users_root = root / "users"
        self.state.mkdir(parents=True)
        self.users_root.mkdir()
        self.port, self.hub_port, proxy_api_port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.token = secrets.token_hex(32)
        self._culler_token = secrets.token_hex(32)
        self._culler: subprocess.Popen[bytes] | None = None
        self.log = self.state / "hub.log"
        settings = {
            "state_dir": str(self.state),
            "users_root": str(self.users_root),
            "port": self.port,
            "hub_port": self.hub_port,
            "proxy_api_port": proxy_api_port,
            "proxy_command": [str(NODE), str(PROXY)],
            "environment": self._server_environment(),
            "sandboxed": list(SANDBOXED),
            "services": [
                {"name": DRIVER, "api_token": self.token, "scopes": DRIVER_SCOPES},
                {"name": CULLER, "api_token": self._culler_token, "scopes": CULLER_SCOPES},
            ],
        }
        settings_file = self.state / "settings.json"
        settings_file.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        self._env = {
            **_clean_environ(),
            "HOME": str(self.state),
            "PI_CODING_AGENT_DIR": str(self.state / "no-pi"),  # the marker: see the docstring
            SETTINGS_ENV: str(settings_file),
        }
        with self.log.open("wb") as sink:
            # The single-user servers inherit the hub's stdout: their logs land here too.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
                cwd=self.state,
                env=self._env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _server_environment(self) -> dict[str, str]:
        """What every user's server gets besides its own agent dir (see the config)."""
        prefix = self.root / "prefix"
        installed = pi_kernel_cli(
            "install", "--prefix", str(prefix), "--pi", str(CURRENT_PI.executable)
        )
        assert installed.returncode == 0, installed.stderr
        return {
            # JupyterHub passes on none of its own environment (Spawner.env_keep).
            "PATH": os.environ["PATH"],
            "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
            "JUPYTERHUB_ACTIVITY_INTERVAL": str(ACTIVITY_INTERVAL),
            **PI_QUIET,
        }

    # -- the hub's REST API, as the test's service --------------------------------------------

    def request(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """``method url`` with the service token: the status, and the answer as JSON (None
        when empty, text when not JSON)."""
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:  # the proxy's own pages ("Not Found" before the hub's routes)
            return status, raw.decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None, *, expect: tuple[int, ...]) -> Any:
        status, answer = self.request(method, f"{self.api_url}/{path}", body)
        assert status in expect, f"{method} /hub/api/{path}: {status} {answer}\n{self.log_tail()}"
        return answer

    def wait_until_up(self) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterHub exited at start:\n{self.log_tail()}")
            try:
                # Through the proxy: the hub is up and has given the proxy its routes.
                return self.request("GET", f"{self.url}/hub/api/")[0] == 200
            except (urllib.error.URLError, ConnectionError):
                return False

        self._wait(answers, HUB_START_TIMEOUT, "JupyterHub answering through its proxy")

    def add_user(self, name: str) -> HubUser:
        """Make user ``name``, with a Pi agent dir pointed at the scripted LLM and a key of
        their own."""
        user = HubUser(name, self.users_root / name, key=f"{name}-key-{secrets.token_hex(12)}")
        write_agent_dir(user.agent_dir, self.llm_base_url, api_key=user.key)
        self.api("POST", f"users/{name}", expect=(201,))
        return user

    def server(self, user: HubUser) -> dict[str, Any] | None:
        """The user's default server as the hub reports it, None when it has none."""
        model = self.api("GET", f"users/{user.name}", expect=(200,))
        server: dict[str, Any] | None = model["servers"].get("")
        return server

    def start_servers(self, *users: HubUser) -> None:
        """Start the users' servers together and wait until all are ready (the hub answers a
        spawn request at once: ``slow_spawn_timeout`` is 0)."""
        for user in users:
            self.api("POST", f"users/{user.name}/server", expect=(202,))

        def ready() -> bool:
            servers = {user.name: self.server(user) for user in users}
            failed = [name for name, server in servers.items() if server is None]
            if failed:
                raise RuntimeError(f"servers that failed to start: {failed}\n{self.log_tail()}")
            return all(server is not None and server["ready"] for server in servers.values())

        names = " and ".join(user.name for user in users)
        self._wait(ready, SERVER_START_TIMEOUT, f"servers of {names} ready")

    def stop_server(self, user: HubUser) -> None:
        self.api("DELETE", f"users/{user.name}/server", expect=(202, 204))
        self.wait_until_stopped(user, SERVER_STOP_TIMEOUT)

    def wait_until_stopped(self, user: HubUser, timeout: float) -> None:
        self._wait(lambda: self.server(user) is None, timeout, f"{user.name}'s server gone")

    def start_culler(self, *, timeout: int, every: int) -> None:
        """Run jupyterhub-idle-culler as the hub's ``idle-culler`` service: with its token, the
        hub's API URL and role, as the hub would start a managed one, but from here, so that
        no server is culled before the test is done with it."""
        with (self.state / "culler.log").open("wb") as sink:
            self._culler = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--url={self.api_url}",
                    f"--timeout={timeout}",
                    f"--cull-every={every}",
                ],
                cwd=self.state,
                env={**self._env, "JUPYTERHUB_API_TOKEN": self._culler_token},
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    # -- a user's server, through the proxy ---------------------------------------------------

    def start_kernel(self, user: HubUser, name: str = "pi") -> str:
        url = f"{self.url}/user/{user.name}/api/kernels"
        status, kernel = self.request("POST", url, {"name": name})
        assert status == 201, f"POST {url}: {status} {kernel}\n{self.log_tail()}"
        return str(kernel["id"])

    @contextmanager
    def channels(self, user: HubUser, kernel_id: str) -> Iterator[KernelChannels]:
        """The kernel's websocket through the proxy, as a notebook frontend opens it."""
        session = uuid.uuid4().hex
        url = (
            f"ws://127.0.0.1:{self.port}/user/{user.name}/api/kernels/{kernel_id}/channels"
            f"?session_id={session}"
        )
        connection = websocket.create_connection(
            url, header=[f"Authorization: token {self.token}"], timeout=CELL_TIMEOUT
        )
        try:
            yield KernelChannels(connection, session)
        finally:
            connection.close()

    def execute(self, user: HubUser, kernel_id: str, code: str) -> CellRun:
        with self.channels(user, kernel_id) as channels:
            return channels.finish(channels.send(code))

    def hub_token_of(self, user: HubUser) -> str:
        """The API token the hub gave the user's server (every kernel there inherits it)."""
        for process in processes_of(user.root):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                token = process.environ().get("JUPYTERHUB_API_TOKEN")
                if token:
                    return token
        raise AssertionError(f"no process of {user.name}'s server has JUPYTERHUB_API_TOKEN")

    def wait_for_pi(self, user: HubUser) -> None:
        self._wait(lambda: bool(user.pis()), PI_START_TIMEOUT, f"a Pi in {user.name}'s server")

    def wait_for_command(self, user: HubUser, command: str) -> None:
        """Until a process of the user's server runs ``command`` (a tool Pi started)."""

        def running() -> bool:
            for process in processes_of(user.root):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                    if command in " ".join(process.cmdline()):
                        return True
            return False

        self._wait(running, CELL_TIMEOUT, f"`{command}` in {user.name}'s server")

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the culler and the hub (which stops the servers and the proxy), then kill the
        process group of anything of the deployment still running.  Bounded; idempotent."""
        for process in (self._culler, self.process):
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(HUB_STOP_TIMEOUT)
            if process.poll() is None:
                _kill_group(process.pid)
                process.wait(KILLED_EXIT_TIMEOUT)
        leftovers = processes_of(self.root)
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                _kill_group(process.pid)
        psutil.wait_procs(leftovers, timeout=KILLED_EXIT_TIMEOUT)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def _wait(self, condition: Callable[[], T], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout} s:\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL)


@contextmanager
def running_hub(root: Path, llm_base_url: str) -> Iterator[Hub]:
    """A hub whose state lies in ``root``, up and answering; gone (with everything it
    started) on exit, whatever happened."""
    hub = Hub(root, llm_base_url)
    try:
        hub.wait_until_up()
        yield hub
    finally:
        hub.close()


def _execute_request(code: str, session: str) -> dict[str, Any]:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "username": DRIVER,
        "session": session,
        "date": datetime.now(UTC).isoformat(),
        "version": "5.3",
    }
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    return {
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
        "buffers": [],
    }


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _clean_environ() -> dict[str, str]:
    """Ours, less what would let the hub or Pi reach past the test (the test may itself run
    in a JupyterHub server, or with the user's Pi settings)."""
    dropped = ("PI_", "JUPYTERHUB_", "JPY_", "CONFIGPROXY_", "JUPYTER_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


def _kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads or belongs to, never the test's own."""
    with contextlib.suppress(ProcessLookupError):
        group = os.getpgid(pid)
        if group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
