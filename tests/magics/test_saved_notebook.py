"""A notebook executed by nbclient and saved: what it keeps must be valid, readable and inert."""

from __future__ import annotations

from pathlib import Path

import nbformat

from tests.support import scripted_llm as script
from tests.support.html_safety import active_content
from tests.support.kernels import run_notebook
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM

PAYLOAD = (
    'Look: <script>window.pwned = 1</script> and <img src=x onerror="window.pwned = 1"> '
    "and [a link](javascript:window.pwned=1) and [another](JaVaScRiPt:window.pwned=1)."
)


def execute(cells: list[str], pi_env: PiEnv, path: Path) -> nbformat.NotebookNode:
    return run_notebook(cells, env=pi_env.env, path=path)


def bundles_of(notebook: nbformat.NotebookNode) -> list[dict[str, str]]:
    """The text of every output (the transcript, JSON data no frontend renders, left out)."""
    return [
        {mime: data for mime, data in output["data"].items() if isinstance(data, str)}
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "data" in output
    ]


def test_payloads_from_the_model_and_a_tool_are_inert_in_the_saved_notebook(
    pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path
):
    llm.enqueue(script.text(PAYLOAD))
    llm.enqueue(
        *script.tool_then_answer(command="echo '<script>window.pwned = 1</script>'", answer=PAYLOAD)
    )
    saved = execute(
        ["%load_ext pi_magics", "%%pi\nShow me", "%%pi\nRun it"], pi_env, tmp_path / "saved.ipynb"
    )
    bundles = bundles_of(saved)
    shown = "\n".join(text for bundle in bundles for text in bundle.values())
    assert "window.pwned" in shown  # the payloads are there, as text
    assert active_content(bundles) == []


def test_the_saved_notebook_reads_without_a_kernel(pi_env: PiEnv, llm: ScriptedLLM, tmp_path: Path):
    llm.enqueue(*script.tool_then_answer(command="echo hello", answer="It printed **hello**."))
    saved = execute(["%load_ext pi_magics", "%%pi\nRun echo"], pi_env, tmp_path / "saved.ipynb")
    markdown = [
        bundle["text/markdown"] for bundle in bundles_of(saved) if "text/markdown" in bundle
    ]
    html = [bundle["text/html"] for bundle in bundles_of(saved) if "text/html" in bundle]
    assert "It printed **hello**." in "\n".join(markdown)
    assert any("echo hello" in page for page in html)
