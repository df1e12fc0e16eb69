"""The sandbox as bubblewrap makes it: a real ``bwrap`` runs a shell in the sandbox Pi would
get, and the shell reports what it can see and write.  (Pi inside it, and the routes it
closes, are tested with real kernels in ``test_confined``.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from pi_kernel import variables
from pi_kernel.sandbox import Sandbox, SandboxUnavailable, confine

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    names = ("notebook", "home", "agent", "channel", "runtime", "other", "extra", "cache")
    found = {name: tmp_path / name for name in names}
    for path in found.values():
        path.mkdir()
    (found["other"] / "kernel.json").write_text("the key")
    (found["home"] / "profile").write_text("at home")
    (found["cache"] / "compiled").write_text("compiled code")
    monkeypatch.setenv(variables.XDG_RUNTIME_DIR, str(found["runtime"]))
    return found


def _run(places: dict[str, Path], script: str, sandbox: Sandbox) -> str:
    env = {
        "PATH": os.environ["PATH"],
        variables.HOME: str(places["home"]),
        variables.AGENT_DIR: str(places["agent"]),
        variables.XDG_RUNTIME_DIR: str(places["runtime"]),
        variables.NODE_COMPILE_CACHE: str(places["cache"]),
    }
    argv = anyio.run(
        lambda: confine(
            sandbox,
            ["sh", "-c", script],
            cwd=str(places["notebook"]),
            env=env,
            channel=places["channel"],
        )
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_pi_writes_only_where_it_must_and_sees_no_other_process(places: dict[str, Path]):
    script = (
        "for d in . $PI_CODING_AGENT_DIR {channel} {extra} $HOME $NODE_COMPILE_CACHE /usr; do "
        "touch $d/probe 2>/dev/null && echo writes $d || echo reads-only $d; done; "
        "cat $HOME/profile $NODE_COMPILE_CACHE/compiled; echo; "
        "ls /proc | grep -c '^[0-9]'; grep CapEff /proc/self/status"
    ).format(channel=places["channel"], extra=places["extra"])
    said = _run(places, script, Sandbox(writable=(places["extra"],)))
    for writable in (".", str(places["agent"]), str(places["channel"]), str(places["extra"])):
        assert f"writes {writable}\n" in said
    assert f"reads-only {places['home']}\n" in said
    assert f"reads-only {places['cache']}\n" in said  # seen (a fast start), never written
    assert "reads-only /usr\n" in said
    assert "at home" in said  # a home under /tmp (as here) is still home
    assert "compiled code" in said
    assert said.split("CapEff:")[1].strip() == "0000000000000000"
    assert int(said.split("\n")[-3]) <= 4  # bwrap's helper, sh, ls, grep


def test_what_leads_into_kernels_is_hidden(places: dict[str, Path]):
    kernel_file = places["other"] / "kernel.json"
    (places["runtime"] / "jpserver-1.json").write_text("the server's token")
    script = f"ls -A $XDG_RUNTIME_DIR /tmp; cat {kernel_file}; echo end"
    said = _run(places, script, Sandbox(hidden=(kernel_file,)))
    assert "jpserver" not in said
    assert "the key" not in said
    assert "end" in said  # the shell went on: hidden, not broken


def test_a_missing_bubblewrap_is_one_sentence(places: dict[str, Path]):
    with pytest.raises(SandboxUnavailable) as raised:
        anyio.run(
            lambda: confine(Sandbox(), ["true"], cwd=str(places["notebook"]), env={"PATH": ""})
        )
    assert str(raised.value) == (
        "The sandbox is on, and bubblewrap (`bwrap`) is not installed: Pi was not started."
    )
    assert "apt-get install bubblewrap" in (raised.value.hint or "")


@pytest.mark.skipif(os.getuid() != 0, reason="taking the namespaces away needs root")
def test_namespaces_refused_is_one_sentence_and_what_to_change(tmp_path: Path):
    # As in a container without the privilege: the caller has no capabilities.
    script = (
        "import anyio\n"
        "from pi_kernel.sandbox import Sandbox, SandboxUnavailable, confine\n"
        "try:\n"
        f"    anyio.run(lambda: confine(Sandbox(), ['true'], cwd={str(tmp_path)!r},\n"
        "                              env={'PATH': '/usr/bin:/bin'}))\n"
        "except SandboxUnavailable as e:\n"
        "    print(e); print(e.hint)\n"
    )
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    done = subprocess.run(
        [bwrap, "--dev-bind", "/", "/", "--cap-drop", "ALL", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    message, hint = done.stdout.splitlines()[:2]
    assert message.startswith("The sandbox is on, and bubblewrap cannot make it here (")
    assert message.endswith("): Pi was not started.")
    assert "user namespaces" in hint


def test_a_pi_installed_under_a_hidden_folder_still_runs_with_its_packages(
    places: dict[str, Path], tmp_path: Path
):
    # As a checkout in /tmp: npm's node_modules, with the program and what it reads.
    modules = tmp_path / "checkout" / "node_modules"
    (modules / ".bin").mkdir(parents=True)
    (modules / "dependency").mkdir()
    (modules / "dependency" / "data").write_text("from a dependency")
    # Named otherwise than ``pi``: the fast tier refuses to start anything called so.
    program = modules / ".bin" / "agent"
    program.write_text(f"#!/bin/sh\ncat {modules / 'dependency' / 'data'}\n")
    program.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        variables.HOME: str(places["home"]),
        variables.AGENT_DIR: str(places["agent"]),
    }
    argv = anyio.run(
        lambda: confine(Sandbox(), [str(program)], cwd=str(places["notebook"]), env=env)
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout == "from a dependency"
