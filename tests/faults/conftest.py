"""The fault drills on a Jupyter server use the browser suite's fixtures."""

from tests.e2e.fixtures import browser, lab, lab_llm, lab_server, page, pytest_runtest_makereport

__all__ = ["browser", "lab", "lab_llm", "lab_server", "page", "pytest_runtest_makereport"]
