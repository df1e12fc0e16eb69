"""Kernel tools that hold, in real kernels with the real Pi: whatever the namespace holds,
whatever Pi's code does, the tool answers and the turn goes on (or stops, when the user
says so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import HISTORY, PROPOSE_CELL, PYTHON, VARIABLES
from pi_kernel.transcript import transcripts_in
from pi_magics.magics import NESTED_PI
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel
from tests.support.pi_env import PiEnv, add_vision_model
from tests.support.scripted_llm import ScriptedLLM, images_in, tool_result

STRANGE_NAMESPACE = '''\
class Unconfigured:
    """Django's settings before configure(): every attribute raises, __class__ too."""
    def __getattribute__(self, name):
        raise ValueError(f"settings.{name}: not configured")

class NoLength(list):
    def __len__(self):
        raise ValueError("no length")

class NoRepr(int):
    def __repr__(self):
        raise ValueError("no repr")

class NoShape:
    dtype = "float64"
    @property
    def shape(self):
        raise ValueError("no shape")

settings, rows, count, grid = Unconfigured(), NoLength([1]), NoRepr(3), NoShape()
get_ipython().user_ns[1] = 2
plain = 'still here'
'''


def test_variables_lists_every_entry_whatever_it_raises(kernel: KernelHarness, llm: ScriptedLLM):
    assert kernel.execute(STRANGE_NAMESPACE).status == "ok"
    llm.enqueue(*script.call(VARIABLES, "Listed."))
    run = kernel.execute("%%pi --tools read\nWhat do I have?")
    assert run.status == "ok", run.error_text
    listed = tool_result(llm.requests[1]).splitlines()
    assert "settings: __main__.Unconfigured" in listed
    assert "rows: __main__.NoLength, its __len__ raised ValueError" in listed
    assert "count: __main__.NoRepr, its __repr__ raised ValueError" in listed
    assert "grid: __main__.NoShape, its shape raised ValueError" in listed
    assert "1 (a key of type int, not a name): int = 2" in listed
    assert "plain: str = 'still here'" in listed
    [transcript] = transcripts_in(run.outputs)
    assert transcript.text == "Listed."


API_KEY = "sk-live-" + "0123456789abcdef" * 2 + "0123456789a"  # 51 characters
PASSWORD = "hunter2-correct-horse"
PIN = "4921-7788-0001"
SECRETS_CELL = f"""\
API_KEY = "{API_KEY}"
db_password = '{PASSWORD}'
card_pin = "{PIN}"
name = "Ada"
"""


def test_credential_like_values_reach_neither_the_model_nor_the_transcript(
    pi_env: PiEnv, llm: ScriptedLLM
):
    pi_env.env[variables.HIDE_NAMES] = "*_pin"  # added to the names hidden by default
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        assert kernel.execute(SECRETS_CELL).status == "ok"
        assert kernel.execute("API_KEY").status == "ok"  # a result in the history
        assert kernel.execute("raise ValueError(db_password)").status == "error"
        llm.enqueue(
            script.tool_calls((VARIABLES, {}), (HISTORY, {"count": 5})), script.text("Seen.")
        )
        run = kernel.execute("%%pi --tools read\nWhat do I have?")
    assert run.status == "ok", run.error_text
    listed, history = (
        str(m["content"]) for m in llm.requests[1]["messages"] if m["role"] == "tool"
    )
    assert "API_KEY: str, 51 characters, hidden (credential-like name)" in listed
    assert "db_password: str, 21 characters, hidden (credential-like name)" in listed
    assert "card_pin: str, 14 characters, hidden (credential-like name)" in listed
    assert "name: str = 'Ada'" in listed
    assert 'API_KEY = "[redacted]"' in history
    assert "db_password = '[redacted]'" in history
    assert "ValueError: [redacted]" in history
    [transcript] = transcripts_in(run.outputs)
    sent, kept = json.dumps(llm.requests), transcript.model_dump_json()
    assert "API_KEY: str, 51 characters" in kept
    for secret in (API_KEY, PASSWORD, PIN):
        assert secret not in sent
        assert secret not in kept
        assert secret not in json.dumps(run.outputs)


SHOW_IMAGE = """\
import struct, zlib
from IPython.display import Image, display

def png(width, height):
    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    packer = zlib.compressobj(9)
    row = b"\\0" * (1 + (width + 7) // 8)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return b"\\x89PNG\\r\\n\\x1a\\n" + chunks

display(Image(data=png({side}, {side}), format="png"))
"""
PEAK_GROWTH_MB = 200
"""What Pi's peak memory may grow by over a turn whose code shows a huge image: decoding
the one shown here (12000x12000, 144 megapixels) takes Pi over 576 MB."""


def peak_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def test_a_huge_image_from_pis_code_is_left_out_before_pi_decodes_it(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    vision = add_vision_model(pi_env.agent_dir)
    assert kernel.execute("%pi restart").status == "ok"
    # A small image first: Pi's own image handling is loaded and warm before the baseline.
    llm.enqueue(*script.call(PYTHON, code=SHOW_IMAGE.replace("{side}", "64")))
    assert kernel.execute(f"%%pi --model {vision}\nShow a small one").status == "ok"
    assert "sent as image 1" in tool_result(llm.requests[1])
    [pi] = kernel.pis()
    before = peak_mb(pi.pid)
    llm.enqueue(*script.call(PYTHON, code=SHOW_IMAGE.replace("{side}", "12000")))
    run = kernel.execute(f"%%pi --model {vision}\nShow a huge one")
    assert run.status == "ok", run.error_text
    reply = tool_result(llm.requests[3])
    assert "image/png 12000x12000" in reply
    assert "not sent: 12000x12000 pixels (144 megapixels) is above the bound of 25 megapixels" in (
        reply
    )
    assert images_in(llm.requests[3]) == images_in(llm.requests[1])  # the small one alone
    growth = peak_mb(pi.pid) - before
    print(f"Pi's peak memory grew by {growth:.0f} MB (from {before:.0f} MB)")
    assert growth < PEAK_GROWTH_MB


def test_a_keyboard_interrupt_pis_code_raises_is_an_error_and_the_turn_goes_on(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(
        script.tool_calls((PYTHON, {"code": "print('before')\nraise KeyboardInterrupt('mine')"})),
        script.tool_calls((PYTHON, {"code": "print('went on')"})),
        script.text("Went on."),
    )
    run = kernel.execute("%%pi\nTry it")
    assert run.status == "ok", run.error_text
    raised = tool_result(llm.requests[1])
    assert "Output:\nbefore" in raised
    assert "Traceback" in raised
    assert "KeyboardInterrupt: mine" in raised
    assert "went on" in tool_result(llm.requests[2])
    [transcript] = transcripts_in(run.outputs)
    assert (transcript.status, transcript.text) == ("completed", "Went on.")


def test_the_users_interrupt_stops_the_turn_even_when_pis_code_catches_it(
    kernel: KernelHarness, llm: ScriptedLLM
):
    code = (
        "import time\ntry:\n    print('sleeping', flush=True)\n    time.sleep(30)\n"
        "except KeyboardInterrupt:\n    caught = True"
    )
    llm.enqueue(*script.call(PYTHON, "Slept.", code=code), script.text("Back."))
    interrupted: list[bool] = []

    def interrupt_when_asleep(message: dict[str, Any]) -> None:
        if not interrupted and "sleeping" in message["content"].get("text", ""):
            interrupted.append(True)
            kernel.interrupt()

    run = kernel.execute("%%pi\nSleep", on_message=interrupt_when_asleep)
    assert interrupted, run.outputs
    assert kernel.execute("assert caught").status == "ok"
    assert len(llm.requests) == 1  # the turn stopped: Pi never asked the model again
    [transcript] = transcripts_in(run.outputs)
    assert transcript.status == "interrupted"
    after = kernel.execute("%%pi\nStill there?")
    assert after.status == "ok", after.error_text


def test_a_cell_proposed_in_the_pi_kernel_is_python(pi_kernel: KernelHarness, llm: ScriptedLLM):
    llm.enqueue(*script.call(PROPOSE_CELL, code="proposed = True"))
    llm.enqueue(*script.call(PROPOSE_CELL, code="%%py\nmarked = True"))
    proposed = []
    for prompt in ("Propose something", "Propose it marked"):
        run = pi_kernel.execute(prompt)
        assert run.status == "ok", run.error_text
        payloads = run.reply["content"]["payload"]
        proposed += [p["text"] for p in payloads if p["source"] == "set_next_input"]
    assert proposed == ["%%py\nproposed = True", "%%py\nmarked = True"]  # not marked twice
    # Run as the user runs it: Python, not a prompt for Pi (which has no reply queued).
    assert pi_kernel.execute(proposed[0]).status == "ok"
    assert pi_kernel.execute("%%py\nassert proposed").status == "ok"


def test_pis_code_calling_pi_is_refused_in_one_line_and_the_turn_goes_on(
    kernel: KernelHarness, llm: ScriptedLLM
):
    nested = "print('before')\nget_ipython().run_cell_magic('pi', '', 'hi')\nprint('after')"
    llm.enqueue(
        script.tool_calls((PYTHON, {"code": nested})),
        script.tool_calls((PYTHON, {"code": "print('next call')"})),
        script.text("Done."),
    )
    run = kernel.execute("%%pi\nAsk yourself")
    assert run.status == "ok", run.error_text
    assert tool_result(llm.requests[1]) == f"Output:\nbefore\n{NESTED_PI}\nafter\n"
    assert tool_result(llm.requests[2]) == "Output:\nnext call\n"
    assert len(llm.requests) == 3  # the nested prompt never reached the model
    [transcript] = transcripts_in(run.outputs)
    assert (transcript.status, transcript.text) == ("completed", "Done.")
