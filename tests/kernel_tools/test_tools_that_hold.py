"""Kernel tools that hold, in real kernels with the real Pi: whatever the namespace holds,
whatever Pi's code does, the tool answers and the turn goes on (or stops, when the user
says so)."""

from __future__ import annotations

from pi_kernel.kernel_tools.catalog import VARIABLES
from pi_kernel.transcript import transcripts_in
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness
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
