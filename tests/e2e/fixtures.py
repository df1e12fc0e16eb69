"""The browser suite's fixtures, shared by ``tests/e2e`` and ``tests/faults`` (their
conftests import them): one JupyterLab, one scripted LLM and one Chromium per test module,
a fresh browser context per test.  A failing test leaves a screenshot in
``test-artifacts/e2e/``; every test ends with its kernels shut down and no Pi process
left."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.lab import CHROMIUM, CHROMIUM_ARGS, Lab, start_lab
from tests.support.pis import REPO
from tests.support.processes import assert_none_left
from tests.support.scripted_llm import ScriptedLLM

ARTIFACTS = REPO / "test-artifacts" / "e2e"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":  # the page fixture reads it at teardown
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API keeps an event loop running on
    # this thread while it is open, which the suite's async tests cannot run beside.
    assert CHROMIUM.exists(), "Chromium is missing: scripts/install.sh --tests installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab_llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as llm:
        yield llm


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, lab_llm: ScriptedLLM) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    lab = start_lab(base, lab_llm)
    try:
        yield lab
    finally:
        lab.stop()
        assert_none_left(base)


@pytest.fixture
def lab(lab_server: Lab, lab_llm: ScriptedLLM) -> Iterator[Lab]:
    """The module's JupyterLab; after the test, its kernels are shut down and no Pi runs."""
    lab_llm.reset()
    yield lab_server
    lab_server.shutdown_kernels()
    assert_none_left(lab_server.root.parent, spare=lab_server.process.pid)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::")[-1])
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
