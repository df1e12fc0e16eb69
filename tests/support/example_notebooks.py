"""The example notebooks in ``notebooks/``: record them against the scripted LLM, replay them
from their cassettes, and reduce their outputs to what must not change between the two.

``scripts/record_notebooks.py`` records them anew (after a change to what they show); the
test suite replays them and compares with the committed outputs.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import PROPOSE_CELL, PYTHON, VARIABLES
from pi_kernel.transcript import MIMETYPE
from pi_magics.workbench import MADE_BY_PI
from tests.support import scripted_llm as script
from tests.support.kernels import CELL_TIMEOUT, execute_notebook
from tests.support.pi_env import pi_env_for
from tests.support.pis import REPO
from tests.support.scripted_llm import Reply, ScriptedLLM

NOTEBOOKS = REPO / "notebooks"
INTERRUPT_TAG = "interrupt"
"""A cell with this tag is interrupted while it streams when the notebook is recorded."""
INTERRUPT_AFTER = 1.5
"""Seconds of streaming before that interrupt."""

STORY = " ".join(
    f"Chapter {n}: the notebook ran another cell, and the kernel answered, and the outputs "
    "piled up like autumn leaves on the saved file."
    for n in range(1, 41)
)


@dataclass(frozen=True)
class Example:
    name: str
    replies: Callable[[], list[Reply]]
    """What the scripted LLM answers, request by request, when the notebook is recorded."""

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def cassette(self) -> str:
        return f"{self.name}.cassette.jsonl"


def _tour() -> list[Reply]:
    return [
        script.text(
            "A Jupyter kernel runs the code a notebook sends it and sends back what happened: "
            "output, rich displays and errors."
        ),
        script.tool_calls(("bash", {"command": "tail -n +2 data/measurements.csv | wc -l"})),
        script.text(
            "There are **24** measurement rows in `data/measurements.csv` (the header aside): "
            "two stations for each of the twelve months."
        ),
        script.text(STORY, pieces=80, delay=0.25),
        script.text("Twenty-four rows, two stations."),
    ]


def _analysis() -> list[Reply]:
    return [
        script.text("March"),
        script.tool_calls(("bash", {"command": "grep '^March,' data/measurements.csv"})),
        script.text(
            "Yes. The north station read 7.2 °C in March, in line with February and April, "
            "while the south station read 31.4 °C, about 20 °C above anything near it. The "
            "south station's March reading is the cause: it looks like a sensor or entry error."
        ),
    ]


OUTLIERS = """\
for station, rows in df.groupby("station"):
    values = rows["temperature_c"].tolist()
    for i, (month, value) in enumerate(zip(rows["month"], values)):
        before, after = values[i - 1], values[(i + 1) % len(values)]
        if abs(value - before) > 10 and abs(value - after) > 10:
            print(f"{station} {month}: {value} °C, between {before} and {after} °C")"""


def _data_analysis() -> list[Reply]:
    means = "df.groupby('station')['temperature_c'].agg(['mean', 'max']).round(1)"
    plot = (
        "months = df.pivot_table(index='month', columns='station', values='temperature_c', "
        "sort=False)\nax = months.plot(marker='o', title='Monthly temperature')\n"
        "ax.set_ylabel('°C');"
    )
    return [
        script.tool_calls((VARIABLES, {})),
        script.tool_calls((PYTHON, {"code": means})),
        script.text(
            "`df` is a DataFrame of 24 rows: `month`, `station` and `temperature_c`, two "
            "stations for each of the twelve months. The **south** station is warmer on average "
            "(12.9 °C against 11.3 °C), but its maximum, 31.4 °C, is ten degrees above the "
            "north's: one reading stands out."
        ),
        script.tool_calls((PYTHON, {"code": plot})),
        script.text(
            "The plot is above: both stations follow the seasons, except the south station's "
            "March reading, 31.4 °C, about 20 °C above the months around it."
        ),
        script.tool_calls((PROPOSE_CELL, {"code": OUTLIERS})),
        script.text(
            "I proposed a cell below this one: for each station it lists the readings more than "
            "10 °C away from both months around them. Run it to see the March reading."
        ),
    ]


EXAMPLES = (
    Example("tour", _tour),
    Example("reproducible-analysis", _analysis),
    Example("data-analysis", _data_analysis),
)


def copy_examples(target: Path) -> Path:
    """The notebooks directory copied to ``target`` (runs never write into the checkout)."""
    shutil.copytree(NOTEBOOKS, target, dirs_exist_ok=True)
    return target


def execute(
    example: Example, folder: Path, env: dict[str, str], llm: ScriptedLLM | None = None
) -> Any:
    """Run the example in ``folder`` with nbclient and save it there; with ``llm``, cells
    tagged ``interrupt`` are interrupted once the LLM has streamed to them for a while."""
    path = folder / example.notebook
    notebook = nbformat.read(path, as_version=4)

    def interrupt_tagged_cells(client: NotebookClient) -> None:
        if llm is not None:
            client.on_cell_execute = _interrupter(client, llm)

    return execute_notebook(notebook, env=env, path=path, prepare=interrupt_tagged_cells)


def _interrupter(client: NotebookClient, llm: ScriptedLLM) -> Callable[..., Any]:
    tasks: set[asyncio.Task[None]] = set()

    async def interrupt_when_streaming(expected: int) -> None:
        await asyncio.to_thread(llm.wait_for_requests, expected, CELL_TIMEOUT)
        await asyncio.sleep(INTERRUPT_AFTER)
        assert client.km is not None
        await client.km.interrupt_kernel()

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        if INTERRUPT_TAG in cell.metadata.get("tags", []):
            task = asyncio.create_task(interrupt_when_streaming(len(llm.requests) + 1))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return on_cell_execute


def record(example: Example, folder: Path) -> Any:
    """Record the example in ``folder`` (a copy of ``notebooks/``) against the scripted LLM."""
    # From scratch, as a reader's first recording would be (the notebook says so otherwise).
    (folder / example.cassette).unlink(missing_ok=True)
    with ScriptedLLM() as llm:
        llm.enqueue(*example.replies())
        pi_env = pi_env_for(folder / ".pi-run", llm.base_url)
        env = {**pi_env.env, variables.RECORD: example.cassette}
        notebook = execute(example, folder, env, llm)
        if llm.queued:
            raise AssertionError(f"{example.notebook}: {llm.queued} scripted replies unused")
    return notebook


def replay(example: Example, folder: Path) -> tuple[Any, int]:
    """Replay the example in ``folder``; the notebook, and the requests the LLM received."""
    with ScriptedLLM() as llm:
        pi_env = pi_env_for(folder / ".pi-run", llm.base_url)
        env = {**pi_env.env, variables.REPLAY: example.cassette}
        notebook = execute(example, folder, env)
        return notebook, len(llm.requests)


# -- what must be the same in a recording and its replay --------------------------------------

_REPLAY_MARK = re.compile(r" · replayed from [\w.-]+")
_MODE_LINE = re.compile(r"^(Recording every Pi turn to|Replaying \d+ recorded turns from) .*$")
_MODE = "(the record or replay notice)"
# %pi status lines that name this machine and this run: which files, which process, and what
# the live Pi has used or served (a replay asks it nothing).
_STATUS_LINE = re.compile(
    r"^(Pi|Process|Session|Totals|Context|Warming|Tools|Cwd|Cassette|Budget|Sandbox|Cells): .*$"
)


def comparable(notebook: Any) -> list[list[dict[str, Any]]]:
    """Each code cell's outputs, less what differs by run: the replay mark, the record or
    replay notice, the paths and process of ``%pi status``, widget ids; and the outputs Pi's
    code made (marked ``MADE_BY_PI``), which a replay does not show: it runs nothing."""
    return [
        [
            _output(output)
            for output in cell.get("outputs", [])
            if MADE_BY_PI not in output.get("metadata", {})
        ]
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def _output(output: Any) -> dict[str, Any]:
    kind = output["output_type"]
    if kind == "stream":
        return {"stream": output["name"], "text": _text(output["text"])}
    if kind == "error":
        return {"error": output["ename"], "value": output["evalue"]}
    data: dict[str, Any] = {}
    for mime, value in output["data"].items():
        if mime == MIMETYPE:
            data[mime] = {k: v for k, v in value.items() if k != "replayed_from"}
        elif mime == "application/vnd.jupyter.widget-view+json":
            data[mime] = {k: v for k, v in value.items() if k != "model_id"}
        else:
            data[mime] = _text(value if isinstance(value, str) else "".join(value))
    return {kind: data}


def _text(text: str) -> str:
    lines = _REPLAY_MARK.sub("", text).split("\n")
    lines = [_STATUS_LINE.sub(r"\1:", _MODE_LINE.sub(_MODE, line)) for line in lines]
    return "\n".join(lines)
