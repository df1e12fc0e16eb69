"""A JupyterLab notebook as a person uses it, through Playwright: open it, run a cell with
Shift+Enter, watch its output, press the stop button, save."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Locator, Page, expect

from tests.support.lab import Lab

KERNEL_READY_TIMEOUT = 60_000
"""Milliseconds for the notebook to show and its kernel to be idle (Pi is started too)."""
CELL_TIMEOUT = 60_000
_DONE_PROMPT = re.compile(r"\[\d+\]:")


class NotebookPage:
    def __init__(self, page: Page, lab: Lab, name: str, *, app: str = "lab") -> None:
        """``app``: "lab" (JupyterLab) or "notebook" (Jupyter Notebook 7)."""
        self.page = page
        self.lab = lab
        self.name = name
        self.app = app

    def open(self) -> NotebookPage:
        self.page.goto(self.lab.notebook_url(self.name, app=self.app))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=KERNEL_READY_TIMEOUT)
        if self.app == "notebook":
            # Notebook 7 has no status bar: its toolbar names the kernel once connected.
            kernel = self.page.locator(".jp-Toolbar-kernelName")
            expect(kernel).not_to_have_text("", timeout=KERNEL_READY_TIMEOUT)
            idle = self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            expect(idle).to_have_count(1, timeout=KERNEL_READY_TIMEOUT)
            return self
        # The status bar says "<kernel> | Idle" once the kernel is connected (the toolbar's
        # indicator already says idle while it connects).
        status_bar = self.page.locator("#jp-main-statusbar")
        expect(status_bar).to_contain_text("| Idle", timeout=KERNEL_READY_TIMEOUT)
        return self

    def cell(self, index: int) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index)

    def output(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-OutputArea")

    def run(self, index: int) -> None:
        """Put the cursor in the cell and press Shift+Enter (returns at once)."""
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        # The key goes where the focus is: on a busy machine the editor may take it a moment
        # after the click (a run once went nowhere, and the cell never ran).
        expect(editor).to_be_focused(timeout=KERNEL_READY_TIMEOUT)
        self.page.keyboard.press("Shift+Enter")

    def wait_done(self, index: int, timeout: float = CELL_TIMEOUT) -> None:
        """Wait until the cell shows its execution count ``[N]:`` (not ``[*]:``)."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        expect(prompt).to_have_text(_DONE_PROMPT, timeout=timeout)

    def run_and_wait(self, index: int) -> Locator:
        self.run(index)
        self.wait_done(index)
        return self.output(index)

    def rerun_and_wait(self, index: int) -> Locator:
        """Run a cell that ran before, and wait for its new execution count."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        self.run(index)
        expect(prompt).not_to_have_text(before, timeout=CELL_TIMEOUT)
        self.wait_done(index)
        return self.output(index)

    def edit(self, index: int, lines: list[str]) -> None:
        """Replace the cell's text, typed line by line as a person would."""
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        for number, line in enumerate(lines):
            if number:
                self.page.keyboard.press("Enter")
            self.page.keyboard.type(line)

    def watch(self, index: int, until: str, timeout: float = 30.0) -> list[str]:
        """The distinct texts the cell's output showed until it contained ``until``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output(index).inner_text()
            if not seen or seen[-1] != text:
                seen.append(text)
            if until in text:
                return seen
            self.page.wait_for_timeout(30)
        raise AssertionError(f"cell {index} never showed {until!r}; it showed {seen[-1:]!r}")

    def interrupt(self) -> None:
        self.page.locator("[data-command='notebook:interrupt-kernel']").first.click()

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        dirty = self.page.locator(".jp-mod-current.jp-mod-dirty")
        expect(dirty).to_have_count(0)
