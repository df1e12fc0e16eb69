"""Pi's kernel tools in real kernels: the real Pi calls them (the scripted LLM asks for them
by name) and the code runs in the user's namespace, in the running cell."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from pi_kernel.kernel_tools.catalog import HISTORY, PROPOSE_CELL, PYTHON, TOOL_NAMES, VARIABLES
from pi_magics.workbench import MADE_BY_PI
from tests.support import scripted_llm as script
from tests.support.kernels import INTERRUPT_BOUND, KernelHarness
from tests.support.pi_env import PiEnv, add_vision_model
from tests.support.scripted_llm import (
    ScriptedLLM,
    call,
    images_in,
    llm_call_id,
    offered,
    tool_result,
)


@pytest.mark.contract
def test_pi_runs_python_in_the_users_namespace(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*call(PYTHON, "x is 42.", code="x = 6 * 7; print(x)"))
    run = kernel.execute("%%pi\nWhat is 6 * 7? Keep it in x.")
    assert run.status == "ok", run.outputs
    first, second = llm.requests
    assert set(TOOL_NAMES) <= set(offered(first))
    assert "42" in tool_result(second)
    assert "x = 6 * 7; print(x)" in run.text("text/plain")
    streams = [out["text"] for out in run.outputs if out["output_type"] == "stream"]
    assert "42\n" in streams
    assert kernel.execute("assert x == 42").status == "ok"
    status = kernel.execute("%pi status").text()
    assert f"Tools:     all: {', '.join(TOOL_NAMES)}; offered in 1 run, 1 call" in status


def test_an_error_in_pis_code_reaches_pi_and_the_kernel_goes_on(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*call(PYTHON, "It failed.", code="def f():\n    return 1 / 0\nf()"))
    run = kernel.execute("%%pi\nDivide")
    assert run.status == "ok", run.outputs
    result = tool_result(llm.requests[1])
    assert "ZeroDivisionError" in result
    assert "return 1 / 0" in result
    assert "interactiveshell" not in result  # IPython's own frames are left out
    assert run.error is not None
    assert run.error["ename"] == "ZeroDivisionError"
    assert kernel.execute("y = 1").status == "ok"


def test_the_result_of_the_last_expression_goes_back(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("data = list(range(5))").status == "ok"
    llm.enqueue(*call(PYTHON, code="sum(data)"))
    run = kernel.execute("%%pi\nSum it")
    assert run.status == "ok", run.outputs
    assert "Result: 10" in tool_result(llm.requests[1])
    # The cell shows the result, marked as made by Pi's code (a replay will not show it).
    (result,) = [out for out in run.outputs if out["output_type"] == "execute_result"]
    assert result["data"]["text/plain"] == "10"
    assert result["metadata"][MADE_BY_PI]["tool"] == PYTHON


def test_variables_and_history_describe_what_the_user_did(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute("numbers = [3, 1, 2]\nname = 'Ada'").status == "ok"
    assert kernel.execute("1 / 0").status == "error"
    llm.enqueue(script.tool_calls((VARIABLES, {}), (HISTORY, {"count": 3})), script.text("Ok."))
    assert kernel.execute("%%pi\nWhat do I have?").status == "ok"
    messages = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    variables, history = (str(m["content"]) for m in messages)
    assert "numbers: list, length 3" in variables
    assert "name: str = 'Ada'" in variables
    assert "pi_magics" not in variables
    assert "In:" not in variables
    assert "numbers = [3, 1, 2]" in history
    assert "ZeroDivisionError" in history


def test_a_proposed_cell_is_a_next_input_payload_and_not_run(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*call(PROPOSE_CELL, code="proposed = True"))
    run = kernel.execute("%%pi\nPropose something")
    assert run.status == "ok", run.outputs
    payloads = run.reply["content"]["payload"]
    assert [p["text"] for p in payloads if p["source"] == "set_next_input"] == ["proposed = True"]
    assert "not run" in tool_result(llm.requests[1])
    assert kernel.execute("assert 'proposed' not in dir()").status == "ok"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("off", set()), ("read", {HISTORY, VARIABLES}), ("all", set(TOOL_NAMES))],
)
def test_the_policy_decides_what_pi_is_offered(
    kernel: KernelHarness, llm: ScriptedLLM, policy: str, expected: set[str]
):
    assert kernel.execute(f"%config PiMagics.kernel_tools = '{policy}'").status == "ok"
    llm.enqueue(script.text("Hi."), script.text("Hi again."))
    assert kernel.execute("%%pi\nHello").status == "ok"
    assert set(offered(llm.requests[0])) & set(TOOL_NAMES) == expected
    # A cell's own choice wins for that cell only.
    assert kernel.execute("%%pi --tools off\nHello").status == "ok"
    assert not set(offered(llm.requests[1])) & set(TOOL_NAMES)


def test_a_refused_tool_is_not_run(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*call(PYTHON, code="ran = True"))
    run = kernel.execute("%%pi --tools read\nTry")
    assert run.status == "ok", run.outputs
    assert "not found" in tool_result(llm.requests[1]).lower() or "not allowed" in tool_result(
        llm.requests[1]
    )
    assert kernel.execute("assert 'ran' not in dir()").status == "ok"


def test_a_bad_policy_is_one_line(kernel: KernelHarness):
    run = kernel.execute("%%pi --tools everything\nHello")
    assert run.status == "error"
    assert "everything" in run.error_text
    assert "all, read, off" in run.error_text
    assert json.dumps(run.outputs).count("Traceback") == 0


@pytest.mark.timing
@pytest.mark.contract
def test_an_interrupt_stops_pis_code_and_aborts_the_turn(kernel: KernelHarness, llm: ScriptedLLM):
    code = "import time\ntry:\n    print('sleeping', flush=True)\n    time.sleep(30)\n" + (
        "except KeyboardInterrupt:\n    woken = 'by the interrupt'\n    raise"
    )
    llm.enqueue(*call(PYTHON, "Slept.", code=code), script.text("Back."))
    interrupted_at: list[float] = []

    def interrupt_when_asleep(message: dict[str, Any]) -> None:
        content = message["content"]
        if not interrupted_at and "sleeping" in content.get("text", ""):
            interrupted_at.append(time.monotonic())
            kernel.interrupt()

    run = kernel.execute("%%pi\nSleep", on_message=interrupt_when_asleep)
    assert interrupted_at, run.outputs
    assert time.monotonic() - interrupted_at[0] < INTERRUPT_BOUND
    assert "interrupted" in run.text("text/plain").lower()
    check = kernel.execute("assert woken == 'by the interrupt'")
    assert check.status == "ok", run.text("text/plain")[-3000:]
    # Pi's turn was aborted: it never asked the model for the answer after the tool.
    assert len(llm.requests) == 1
    after = kernel.execute("%%pi\nStill there?")
    assert after.status == "ok", after.outputs
    assert "Back." in after.text("text/markdown") or "Slept." in after.text("text/markdown")


PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('prices')"


def test_a_plot_shows_in_the_cell_and_reaches_a_vision_model_as_an_image(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"  # Pi reads its models at start
    llm.enqueue(*call(PYTHON, "A line.", code=PLOT))
    run = kernel.execute(f"%%pi --model {vision}\nPlot the prices")
    assert run.status == "ok", run.outputs
    assert any("image/png" in out.get("data", {}) for out in run.outputs)
    result = tool_result(llm.requests[1])
    assert "<Figure size" in result
    assert "sent as image 1" in result
    (image,) = images_in(llm.requests[1])
    assert image.startswith("data:image/png;base64,iVBOR")


def test_a_plot_reaches_the_notebooks_vision_model_as_an_image(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"  # Pi reads its models at start
    assert kernel.execute(f"%%pi\n/model {vision}").status == "ok"
    llm.enqueue(*call(PYTHON, "A line.", code=PLOT))
    # Pi runs: the turn learns the notebook's model as it starts, before the plot is made.
    run = kernel.execute("%%pi\nPlot the prices")
    assert run.status == "ok", run.outputs
    assert "sent as image 1" in tool_result(llm.requests[1])
    (image,) = images_in(llm.requests[1])
    assert image.startswith("data:image/png;base64,iVBOR")


def test_a_text_only_model_gets_the_plot_described(kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*call(PYTHON, "A line.", code=PLOT))
    run = kernel.execute("%%pi --model scripted/plain\nPlot the prices")
    assert run.status == "ok", run.outputs
    (plot,) = [out for out in run.outputs if "image/png" in out.get("data", {})]
    assert plot["metadata"][MADE_BY_PI] == {"tool": PYTHON, "call_id": llm_call_id(llm, 0)}
    result = tool_result(llm.requests[1])
    assert "<Figure size 640x480 with 1 Axes>" in result
    assert "not sent: this model takes no image input" in result
    assert images_in(llm.requests[1]) == []


def test_a_dataframe_is_summarised_with_its_shape_and_dtypes(
    kernel: KernelHarness, llm: ScriptedLLM
):
    setup = "import pandas as pd\ndf = pd.DataFrame({'price': [1.5, 2.0], 'item': ['a', 'b']})"
    assert kernel.execute(setup).status == "ok"
    llm.enqueue(script.tool_calls((VARIABLES, {}), (HISTORY, {"count": 1})), script.text("Ok."))
    assert kernel.execute("%%pi\nWhat is df?").status == "ok"
    described, history = (
        str(m["content"]) for m in llm.requests[1]["messages"] if m["role"] == "tool"
    )
    assert "df: pandas.DataFrame, shape (2, 2), columns {price: float64, item:" in described
    assert "pd: " not in described  # a module is not a variable
    assert setup in history  # the cell that made it


def test_an_image_as_the_last_expression_goes_back_too(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"
    code = "from PIL import Image\nImage.new('RGB', (32, 16), 'red')"
    llm.enqueue(*call(PYTHON, code=code))
    run = kernel.execute(f"%%pi --model {vision}\nPlot")
    assert run.status == "ok", run.outputs
    assert any("image/png" in out.get("data", {}) for out in run.outputs)
    assert re.search(
        r"\(image/png 32x16, 0 KB, [0-9a-f]{12}; sent as image 1\)", tool_result(llm.requests[1])
    )
    assert len(images_in(llm.requests[1])) == 1


def test_an_image_goes_with_the_prompt_from_a_file_or_a_variable(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"
    make = (
        "from PIL import Image\nsquare = Image.new('RGB', (8, 8), 'blue')\n"
        "square.save('square.png')\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()"
    )
    assert kernel.execute(make).status == "ok"
    llm.enqueue(script.text("Two images."))
    run = kernel.execute(f"%%pi --model {vision} --image square.png --image fig\nWhat are these?")
    assert run.status == "ok", run.outputs
    user = [m for m in llm.requests[0]["messages"] if m["role"] == "user"][-1]
    assert len(images_in(llm.requests[0])) == 2
    assert any(part.get("text") == "What are these?" for part in user["content"])
    assert "Sent with the prompt: square.png (image/png" in run.text("text/plain")
    assert "Sent with the prompt: fig (image/png" in run.text("text/plain")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("--image missing.png", "--image missing.png: no such file, and no variable of that name."),
        ("--image numbers", "--image numbers: a list is not an image"),
        ("--image notes.txt", "--image notes.txt: not a PNG, JPEG, GIF or WebP image."),
        (
            "--image huge.png",
            "--image huge.png: 6000x5000 pixels (30 megapixels) is above the bound of 25 "
            "megapixels.",
        ),
    ],
)
def test_a_bad_image_is_one_line_and_nothing_is_sent(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, line: str, says: str
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"
    setup = (
        "numbers = [1, 2]\nopen('notes.txt', 'w').write('hello')\n"
        "from PIL import Image\nImage.new('1', (6000, 5000)).save('huge.png')"
    )
    assert kernel.execute(setup).status == "ok"
    run = kernel.execute(f"%%pi --model {vision} {line}\nLook")
    assert run.status == "error"
    assert says in run.error_text
    assert len(run.error_text.strip().splitlines()) == 1
    assert llm.requests == []


def test_a_model_without_image_input_is_refused_before_anything_is_sent(
    kernel: KernelHarness, llm: ScriptedLLM
):
    assert (
        kernel.execute("from PIL import Image\nImage.new('RGB', (4, 4)).save('a.png')").status
        == "ok"
    )
    run = kernel.execute("%%pi --model scripted/plain --image a.png\nLook")
    assert run.status == "error"
    assert "Pi does not list image input for scripted/plain" in run.error_text
    assert llm.requests == []


@pytest.mark.contract
def test_the_channels_path_and_secret_never_reach_pis_commands(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(*script.tool_then_answer(command="env", answer="That is the environment."))
    assert kernel.execute("%%pi\nShow the environment").status == "ok"
    printed = tool_result(llm.requests[1])
    assert "PI_CODING_AGENT_DIR" in printed  # the environment was printed
    assert "PI_KERNEL_TOOLS" not in printed
