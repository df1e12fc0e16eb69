"""What Pi did to files, visible: an edit's diff in the cell and the transcript, a write's
path and size (real kernel, each Pi people run)."""

from __future__ import annotations

import pytest

from pi_kernel.blocks import DIFF_LIMIT, edit_diff
from pi_kernel.transcript import ToolPart, transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM

EDIT = {"path": "a.py", "edits": [{"oldText": "y = 2", "newText": "y = 20\nw = 5"}]}


@pytest.mark.contract
def test_an_edit_shows_its_diff_and_a_write_its_path_and_size(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    (pi_env.cwd / "a.py").write_text("x = 1\ny = 2\nz = 3\n", encoding="utf-8")
    llm.enqueue(
        script.tool_calls(("edit", EDIT)),
        script.tool_calls(("write", {"path": "b.txt", "content": "hello\nworld\n"})),
        script.text("Edited and wrote."),
    )
    run = kernel.execute("%%pi\nChange y, write b.txt")
    assert run.status == "ok", run.outputs
    plain = run.text("text/plain")
    assert "-2 y = 2" in plain or "-y = 2" in plain
    assert "+w = 5" in plain or "+3 w = 5" in plain
    assert "[tool write] b.txt (12 bytes, 2 lines)" in plain
    html = run.text("text/html")
    assert "<summary>Diff: 2 lines added, 1 removed</summary>" in html
    (transcript,) = transcripts_in(run.outputs)
    edit, write = (part for part in transcript.blocks if isinstance(part, ToolPart))
    assert "w = 5" in edit.diff
    assert write.diff == ""


def test_the_diff_comes_from_the_patch_else_pis_numbered_diff_and_is_bounded():
    assert edit_diff({"diff": "-1 a\n+1 b", "patch": "--- f\n+++ f\n-a\n+b\n"}).startswith("--- f")
    assert edit_diff({"diff": "-1 a\n+1 b"}) == "-1 a\n+1 b"
    assert edit_diff(None) == ""
    assert edit_diff({"diff": 3}) == ""
    long = "".join(f"+{n} line {n}\n" for n in range(10_000))
    kept = edit_diff({"diff": long})
    assert len(kept) <= DIFF_LIMIT + 100
    assert kept.endswith("more characters of the diff not kept\n")
    assert long.startswith(kept.split("…")[0])
