"""Every environment variable pi-kernel reads or sets is in ``pi_kernel.variables``' table,
and read there alone."""

from __future__ import annotations

import re

from pi_kernel import variables
from tests.support.pis import REPO

SOURCES = sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "src").rglob("*.js"))


def test_every_pi_kernel_variable_named_in_the_code_is_in_the_table():
    named = {
        name
        for path in SOURCES
        for name in re.findall(r"\bPI_KERNEL_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8"))
    }
    table = {variable.name for variable in variables.VARIABLES}
    assert named - table == set()
    assert len(table) == len(variables.VARIABLES)  # each once


def test_no_module_but_the_table_reads_the_environment_by_name():
    reads = re.compile(r"os\.environ\.get\(|os\.environ\[|os\.getenv\(")
    readers = [
        path.relative_to(REPO).as_posix()
        for path in SOURCES
        if path.suffix == ".py"
        and path.name != "variables.py"
        and reads.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_the_table_says_who_sets_each_variable_and_what_it_does():
    for variable in variables.VARIABLES:
        assert variable.meaning.endswith("."), variable.name
        assert variable.who in ("you", "pi-kernel", "Pi", "the system"), variable.name
