"""``%pi picker`` in a real kernel: dropdowns filled by the real Pi, choices that reach the LLM.

The widgets are driven the two ways a frontend's changes arrive: by setting their values in
the kernel (what a comm ``update`` does there) and, once, by a real ``comm_msg`` on the shell
channel, as JupyterLab sends it.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pi_kernel.rpc import PiInstall
from tests.support import scripted_llm as script
from tests.support.kernels import MAGICS, CellRun, KernelHarness, run_notebook, running_kernel
from tests.support.pi_env import GATED_KEY_ENV, PiEnv, add_gated_provider, isolated_env
from tests.support.pis import REPO
from tests.support.scripted_llm import ScriptedLLM

PICKER = f"{MAGICS}.picker"
SESSION = f"{MAGICS}.session"
REVOKE_GATE = REPO / "tests" / "data" / "extensions" / "revoke_gate.ts"
MODELS = ["scripted/deep", "scripted/plain", "scripted/reasoner"]
REASONER_LEVELS = ["off", "minimal", "low", "medium", "high"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def ok(run: CellRun) -> CellRun:
    assert run.status == "ok", run.error_text or run.outputs
    return run


def picker_state(kernel: KernelHarness) -> dict[str, Any]:
    return kernel.evaluate(
        "{"
        f'"models": [v for _, v in {PICKER}.model.options], '
        f'"labels": [label for label, _ in {PICKER}.model.options], '
        f'"model": {PICKER}.model.value, "model_disabled": {PICKER}.model.disabled, '
        f'"levels": list({PICKER}.thinking.options), "level": {PICKER}.thinking.value, '
        f'"levels_disabled": {PICKER}.thinking.disabled, '
        f'"status": {PICKER}.status.value, "refresh": {PICKER}.refresh_button.description'
        "}",
    )


def commands_sent(kernel: KernelHarness) -> dict[str, int]:
    return kernel.evaluate(f"dict({SESSION}.pi.current.client.commands_sent)")


def open_picker(kernel: KernelHarness) -> dict[str, Any]:
    run = ok(kernel.execute("%pi picker"))
    [shown] = [out["data"] for out in run.outputs if WIDGET_VIEW in out.get("data", {})]
    # Read without a kernel (a saved notebook, nbconvert), it says what was chosen.
    assert shown["text/plain"].startswith("Pi picker: "), shown
    return picker_state(kernel)


@pytest.fixture
def start_kernel(pi_env: PiEnv) -> Iterator[Any]:
    """Start a kernel, run ``setup`` cells (``%config`` ...), then ``%load_ext pi_magics``."""
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:

        def start(*setup: str) -> KernelHarness:
            for cell in setup:
                ok(kernel.execute(cell))
            ok(kernel.execute("%load_ext pi_magics"))
            return kernel

        yield start


# -- what the dropdowns offer ------------------------------------------------------------------


def test_the_model_dropdown_offers_exactly_pi_s_models_with_the_current_one_selected(
    start_kernel: Any,
):
    kernel = start_kernel()
    state = open_picker(kernel)
    assert state["models"] == MODELS
    assert state["labels"] == [f"scripted / Scripted {m.split('/')[1]}" for m in MODELS]
    status = ok(kernel.execute("%pi status")).text()
    assert f"Model:     {state['model']}" in status
    assert not state["model_disabled"]


def test_the_levels_are_those_of_the_selected_model(start_kernel: Any):
    kernel = start_kernel()
    open_picker(kernel)
    ok(kernel.execute(f'{PICKER}.model.value = "scripted/reasoner"'))
    state = picker_state(kernel)
    assert state["levels"] == REASONER_LEVELS
    assert not state["levels_disabled"]
    ok(kernel.execute(f'{PICKER}.model.value = "scripted/deep"'))
    assert picker_state(kernel)["levels"] == [*REASONER_LEVELS, "xhigh"]
    ok(kernel.execute(f'{PICKER}.model.value = "scripted/plain"'))
    state = picker_state(kernel)
    assert state["levels"] == ["off"]
    assert state["level"] == "off"
    assert state["levels_disabled"]


@pytest.mark.live  # a python3 kernel with an empty agent dir
def test_without_credentials_the_picker_is_disabled_and_says_how_to_log_in(
    tmp_path: Path,
):
    empty = isolated_env(tmp_path / "empty", tmp_path / "empty" / "agent")
    (tmp_path / "empty" / "agent").mkdir()
    env = {k: v for k, v in empty.env.items() if not k.endswith("_API_KEY")}
    with running_kernel(env=env, cwd=empty.cwd) as kernel:
        ok(kernel.execute("%load_ext pi_magics"))
        state = open_picker(kernel)
    assert state["models"] == [None]
    assert state["labels"] == ["no models: no credentials"]
    assert state["model_disabled"]
    assert state["levels"] == []
    assert "offers no models" in state["status"]
    assert "/login" in state["status"]


def test_with_pi_missing_the_picker_is_disabled_and_names_the_path_tried(
    start_kernel: Any, tmp_path: Path
):
    missing = tmp_path / "no" / "pi"
    kernel = start_kernel(f"%config PiMagics.pi_path = {str(missing)!r}")
    state = open_picker(kernel)
    assert state["labels"] == ["Pi not found"]
    assert state["model_disabled"]
    assert str(missing) in state["status"]
    assert "npm" in state["status"]  # how to install


# -- choosing ----------------------------------------------------------------------------------


def test_the_chosen_model_and_level_reach_the_llm_and_status_agrees(
    start_kernel: Any, llm: ScriptedLLM
):
    kernel = start_kernel()
    open_picker(kernel)
    ok(kernel.execute(f'{PICKER}.model.value = "scripted/deep"'))
    ok(kernel.execute(f'{PICKER}.thinking.value = "xhigh"'))
    status = ok(kernel.execute("%pi status")).text()
    assert "Model:     scripted/deep" in status
    assert "Thinking:  xhigh" in status
    llm.enqueue(script.text("Deep answer."))
    ok(kernel.execute("%%pi\nThink hard"))
    assert llm.requests[-1]["model"] == "deep"
    assert llm.requests[-1]["reasoning_effort"] == "xhigh"
    # A cell's own --model is for that cell; the picker's choice holds for the next.
    llm.enqueue(script.text("Plain answer."), script.text("Deep again."))
    ok(kernel.execute("%%pi --model scripted/plain\nQuick"))
    assert llm.requests[-1]["model"] == "plain"
    ok(kernel.execute("%%pi\nAnd now"))
    assert llm.requests[-1]["model"] == "deep"
    assert llm.requests[-1]["reasoning_effort"] == "xhigh"
    assert picker_state(kernel)["model"] == "scripted/deep"


def test_a_choice_sent_as_a_comm_message_like_jupyterlab_does_reaches_pi(
    start_kernel: Any, llm: ScriptedLLM
):
    kernel = start_kernel()
    open_picker(kernel)
    comm_id = kernel.evaluate(f"{PICKER}.model.model_id")
    index = MODELS.index("scripted/reasoner")
    content = {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"index": index}, "buffer_paths": []},
    }
    kernel.client.shell_channel.send(kernel.client.session.msg("comm_msg", content))
    # Shell messages are handled in order: the update is done before this cell runs.
    llm.enqueue(script.text("Reasoned."))
    ok(kernel.execute("%%pi\nHello"))
    assert llm.requests[-1]["model"] == "reasoner"
    assert picker_state(kernel)["model"] == "scripted/reasoner"


def test_a_model_pi_refuses_is_not_kept_and_the_next_cell_runs_the_previous_one(
    pi_env: PiEnv, llm: ScriptedLLM
):
    gated = add_gated_provider(pi_env.agent_dir, llm.base_url)
    env = {**pi_env.env, GATED_KEY_ENV: "gate-key"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        ok(kernel.execute(f"%config PiMagics.pi_args = ['-e', {str(REVOKE_GATE)!r}]"))
        ok(kernel.execute("%load_ext pi_magics"))
        state = open_picker(kernel)
        assert gated in state["models"]  # offered: its key was there at discovery
        ok(kernel.execute(f'{PICKER}.model.value = "scripted/reasoner"'))
        ok(kernel.execute("%%pi\n/revoke-gate"))
        ok(kernel.execute(f"{PICKER}.model.value = {gated!r}"))
        state = picker_state(kernel)
        assert state["model"] == "scripted/reasoner"
        assert "No API key for gated/locked" in state["status"]
        # The text box: a malformed reference and a model Pi does not have, both refused.
        ok(kernel.execute(f'{PICKER}.custom.value = "scripted/ plain"\n{PICKER}.use_custom()'))
        assert "not a model reference" in picker_state(kernel)["status"]
        ok(kernel.execute(f'{PICKER}.custom.value = "scripted/nope"\n{PICKER}.use_custom()'))
        state = picker_state(kernel)
        assert "Model not found: scripted/nope" in state["status"]
        assert state["model"] == "scripted/reasoner"
        llm.enqueue(script.text("Still reasoning."))
        ok(kernel.execute("%%pi\nWho answers?"))
        assert llm.requests[-1]["model"] == "reasoner"
        # ... and one Pi accepts is used.
        ok(kernel.execute(f'{PICKER}.custom.value = "scripted/plain"\n{PICKER}.use_custom()'))
        assert picker_state(kernel)["model"] == "scripted/plain"


# -- what the picker costs ---------------------------------------------------------------------


def test_without_the_picker_nothing_is_discovered(start_kernel: Any, llm: ScriptedLLM):
    kernel = start_kernel()
    llm.enqueue(script.text("Hi."))
    ok(kernel.execute("%%pi\nHello"))
    sent = commands_sent(kernel)
    assert sent.get("get_available_models", 0) == 0
    assert sent.get("get_available_thinking_levels", 0) == 0
    assert sent.get("set_model", 0) == 0


def test_refilling_the_dropdowns_sends_pi_no_model_change(start_kernel: Any, llm: ScriptedLLM):
    kernel = start_kernel()  # Pi keeps a session file: each model change is an entry in it
    open_picker(kernel)
    for _ in range(3):
        ok(kernel.execute(f"{PICKER}.refresh_button.click()"))
    open_picker(kernel)
    ok(kernel.execute(f'{PICKER}.model.value = "scripted/reasoner"'))
    open_picker(kernel)
    ok(kernel.execute(f"{PICKER}.refresh_button.click()"))
    llm.enqueue(script.text("Hi."))
    ok(kernel.execute("%%pi\nHello"))  # Pi writes its session file with the first answer
    assert commands_sent(kernel)["set_model"] == 1
    path = Path(kernel.evaluate(f"{MAGICS}.bridge.call({SESSION}.state).session_file"))
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    changes = [entry for entry in entries if entry.get("type") == "model_change"]
    # The model Pi started with, then the one choice: no change from refilling.
    assert [(c["provider"], c["modelId"]) for c in changes] == [
        ("scripted", "plain"),
        ("scripted", "reasoner"),
    ]


def test_discovery_that_times_out_says_so_and_a_retry_works(start_kernel: Any):
    kernel = start_kernel("%config PiMagics.discovery_timeout = 1.0")
    pi = kernel.wait_for_pi()
    ok(kernel.execute(f"{MAGICS}.bridge.call({SESSION}.client)"))  # Pi is up and answering
    os.kill(pi.pid, signal.SIGSTOP)
    try:
        state = open_picker(kernel)
    finally:
        os.kill(pi.pid, signal.SIGCONT)
    assert state["labels"] == ["Pi did not answer"]
    assert state["model_disabled"]
    assert state["refresh"] == "Retry"
    assert "did not answer discovery" in state["status"]
    ok(kernel.execute(f"{PICKER}.refresh_button.click()"))
    state = picker_state(kernel)
    assert state["models"] == MODELS
    assert state["refresh"] == "Refresh"


# -- the user's settings -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["current", "legacy"])
def test_the_user_s_settings_json_is_unchanged_by_a_notebook_s_choices(
    which: str,
    pi_env: PiEnv,
    llm: ScriptedLLM,
    pi_install: PiInstall,
    legacy_install: PiInstall,
):
    install = pi_install if which == "current" else legacy_install
    settings = pi_env.agent_dir / "settings.json"
    before = settings.read_bytes()
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        ok(kernel.execute(f"%config PiMagics.pi_path = {str(install.path)!r}"))
        ok(kernel.execute("%load_ext pi_magics"))
        open_picker(kernel)
        ok(kernel.execute(f'{PICKER}.model.value = "scripted/reasoner"'))
        ok(kernel.execute(f'{PICKER}.thinking.value = "high"'))
        llm.enqueue(script.text("One."), script.text("Two."))
        ok(kernel.execute("%%pi --model scripted/plain\nOne"))
        ok(kernel.execute("%pi restart"))
        ok(kernel.execute("%%pi\nTwo"))
        assert llm.requests[-1]["model"] == "reasoner"  # the new Pi got the notebook's choice
        assert llm.requests[-1]["reasoning_effort"] == "high"
        assert settings.read_bytes() == before
        ok(kernel.execute("%unload_ext pi_magics"))
    assert settings.read_bytes() == before


# -- headless ----------------------------------------------------------------------------------


def test_a_headless_run_stores_the_picker_s_widget_state(pi_env: PiEnv, tmp_path: Path):
    saved = run_notebook(
        ["%load_ext pi_magics", "%pi picker"], env=pi_env.env, path=tmp_path / "picker.ipynb"
    )
    assert not [out for cell in saved.cells for out in cell.outputs if "ename" in out]
    state = saved.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    dropdowns = [m["state"] for m in state.values() if m["model_name"] == "DropdownModel"]
    labels = {tuple(dropdown["_options_labels"]) for dropdown in dropdowns}
    assert tuple(f"scripted / Scripted {m.split('/')[1]}" for m in MODELS) in labels


def test_a_new_pi_that_refuses_the_notebook_s_model_says_so_and_the_picker_follows(
    pi_env: PiEnv, llm: ScriptedLLM
):
    gated = add_gated_provider(pi_env.agent_dir, llm.base_url)
    env = {**pi_env.env, GATED_KEY_ENV: "gate-key"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        ok(kernel.execute("%load_ext pi_magics"))
        open_picker(kernel)
        ok(kernel.execute(f"{PICKER}.model.value = {gated!r}"))
        # The next Pi starts without the key (the kernel's environment is Pi's).
        ok(kernel.execute(f"import os; del os.environ[{GATED_KEY_ENV!r}]"))
        restart = kernel.execute("%pi restart")
        assert restart.status == "error"
        message = restart.error_text
        assert "refused the notebook's choice (model gated/locked" in message
        assert "Model not found: gated/locked" in message
        assert "Traceback" not in message
        assert picker_state(kernel)["model"] == "scripted/plain"  # what the new Pi runs
        llm.enqueue(script.text("Plain again."))
        ok(kernel.execute("%%pi\nWho answers?"))
        assert llm.requests[-1]["model"] == "plain"
