"""Kernel tools that hold, in real kernels with the real Pi: whatever the namespace holds,
whatever Pi's code does, the tool answers and the turn goes on (or stops, when the user
says so)."""

from __future__ import annotations

import json

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import HISTORY, VARIABLES
from pi_kernel.transcript import transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel
from tests.support.pi_env import PiEnv
from tests.support.scripted_llm import ScriptedLLM, tool_result

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
