"""``jupyter_kernel_test``'s protocol checks for the installed Pi kernelspec, with the real Pi
and the scripted LLM behind it.

Every message the kernel sends back is validated against the Jupyter message spec.  The
samples use the kernel's own forms: a prompt, ``%%py`` for Python, ``%pi`` subcommands,
``/`` slash commands and ``--model`` ids.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import ClassVar

import jupyter_kernel_test
import pytest
from jupyter_client.manager import start_new_kernel

from pi_kernel.kernel.routing import PYTHON_MARKER
from tests.support import scripted_llm as script
from tests.support.kernels import KERNEL_READY_TIMEOUT, install_pi_kernelspec
from tests.support.pi_env import pi_env_for
from tests.support.processes import assert_none_left
from tests.support.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.live  # jupyter_kernel_test starts a Pi kernel per class

PY = f"{PYTHON_MARKER}\n"


class PiKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = "pi"
    language_name = "markdown"
    file_extension = ".md"

    code_hello_world = PY + "print('hello, world')"
    code_stderr = PY + "import sys; print('test', file=sys.stderr)"
    code_generate_error = PY + "raise ValueError('boom')"
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": PY + "6 * 7", "result": "42"},
        {"code": PY + "'pi' * 2", "result": "'pipi'"},
    ]
    code_display_data: ClassVar[list[dict[str, str]]] = [
        # Pi's answer: its blocks carry Markdown, its footer HTML; every one has text/plain.
        {"code": "Say hello.", "mime": "text/plain"},
        {
            "code": PY + "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))",
            "mime": "text/html",
        },
    ]
    code_clear_output = PY + "from IPython.display import clear_output\nclear_output()"
    code_page_something = "%pinfo print"
    code_inspect_sample = "Which is better, scripted/deep"
    completion_samples: ClassVar[list[dict[str, object]]] = [
        {"text": "/rev", "matches": ["/review"]},
        {"text": "%pi st", "matches": ["status"]},
        {"text": "%%pi --model scripted/d", "matches": ["scripted/deep"]},
        {"text": PY + "import collections.abc", "matches": ["collections.abc"]},
    ]
    complete_code_samples: ClassVar[list[str]] = [
        "Explain closures.",
        "%pi status",
        PY + "x = 1\n\n",
    ]
    incomplete_code_samples: ClassVar[list[str]] = [PY + "def f(x):"]
    code_history_pattern = "*6 * 7*"
    # As for IPython's own kernel: a "range" request for the current session answers with
    # session number 0, which the generic check does not expect.
    supported_history_operations = ("tail", "search")

    llm: ClassVar[ScriptedLLM]
    _resources: ClassVar[ExitStack]
    _root: ClassVar[Path]

    @classmethod
    def setUpClass(cls) -> None:
        with ExitStack() as stack:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            cls.llm = stack.enter_context(ScriptedLLM())
            pi_env = pi_env_for(root, cls.llm.base_url)
            prompts = pi_env.agent_dir / "prompts"
            prompts.mkdir()
            (prompts / "review.md").write_text("---\ndescription: Review\n---\nReview $@\n")
            jupyter_path = install_pi_kernelspec(root / "prefix")
            pi_env.env["JUPYTER_PATH"] = jupyter_path
            # The kernelspec is looked up in this process's environment.
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            patch.setenv("JUPYTER_PATH", jupyter_path)
            cls.km, cls.kc = start_new_kernel(
                kernel_name=cls.kernel_name,
                startup_timeout=KERNEL_READY_TIMEOUT,
                env=pi_env.env,
                cwd=str(pi_env.cwd),
            )
            stack.callback(shutil.rmtree, root, ignore_errors=True)
            cls._root = root
            cls._resources = stack.pop_all()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
            assert_none_left(cls._root)  # the kernel's Pi went with it
        finally:
            cls._resources.close()

    def test_display_data(self) -> None:
        self.llm.enqueue(script.text("Hello from Pi."))
        super().test_display_data()
        assert "Say hello." in str(self.llm.requests[-1]["messages"])
