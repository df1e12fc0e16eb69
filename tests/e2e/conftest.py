"""The browser suite's fixtures (``tests.e2e.fixtures``)."""

from tests.e2e.fixtures import browser, lab, lab_llm, lab_server, page, pytest_runtest_makereport

__all__ = ["browser", "lab", "lab_llm", "lab_server", "page", "pytest_runtest_makereport"]
