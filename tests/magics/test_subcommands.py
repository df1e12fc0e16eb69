"""``%pi``'s subcommands are written once: the usage line, the help and the magics' methods
all follow the table."""

from __future__ import annotations

import re

from pi_magics.magics import PiMagics
from pi_magics.subcommands import HELP, NAMES, SUBCOMMANDS, USAGE


def test_every_subcommand_has_its_method_and_no_method_lacks_a_row():
    methods = {name.removeprefix("_pi_") for name in dir(PiMagics) if name.startswith("_pi_")}
    assert methods == set(NAMES)
    assert PiMagics.subcommands == NAMES


def test_usage_and_help_name_every_subcommand_in_the_table_order():
    assert re.findall(r"(?:%pi |\| )(\w+)", USAGE) == list(NAMES)
    assert re.findall(r"^%pi (\w+)", HELP, re.MULTILINE) == list(NAMES)


def test_help_lines_keep_to_the_help_width():
    for subcommand in SUBCOMMANDS:
        lines = subcommand.help_lines()
        assert lines[0].startswith(f"%pi {subcommand.form}")
        assert all(len(line) <= 90 for line in lines[1:])
