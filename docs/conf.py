"""Sphinx configuration for pi-kernel's documentation site.

The configuration reference is written from the code at each build (every ``PiMagics``
setting with its help and default, every environment variable of ``pi_kernel.variables``),
so it cannot fall behind; the example notebooks are copied from ``notebooks/`` and rendered
with their saved outputs by myst-nb, never executed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from pi_kernel import __version__, variables  # noqa: E402
from pi_magics.settings import PiSettings  # noqa: E402

project = "pi-kernel"
release = version = __version__
extensions = ["myst_nb"]
html_theme = "pydata_sphinx_theme"
html_title = f"pi-kernel {version}"
html_theme_options = {"navigation_with_keys": False}
exclude_patterns = ["_build", "generated/*.md"]  # included by configuration.md
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks' saved outputs, as recorded against the model
# A turn's transcript rides beside its output as JSON under its own mimetype: the page shows
# the output; the record is the notebook's, not the reader's.
nb_mime_priority_overrides = [("html", "application/vnd.pi.transcript+json", None)]
suppress_warnings = ["mystnb.unknown_mime_type"]

GENERATED = HERE / "generated"


def _settings_table() -> str:
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    # Defaults made by a method (read from the environment) are said so, not guessed.
    dynamic = set(PiSettings._trait_default_generators)
    for name, trait in sorted(PiSettings.class_traits(config=True).items()):
        shown = "from the environment" if name in dynamic else f"`{trait.default_value_repr()}`"
        text = " ".join((trait.help or "").split()).replace("|", "\\|")
        rows.append(f"| `PiMagics.{name}` | {shown} | {text} |")
    return "\n".join(rows) + "\n"


def _environment_table() -> str:
    rows = ["| variable | set by | what it does |", "|---|---|---|"]
    for variable in sorted(variables.VARIABLES, key=lambda v: v.name):
        text = " ".join(variable.meaning.split()).replace("|", "\\|")
        rows.append(f"| `{variable.name}` | {variable.who} | {text} |")
    return "\n".join(rows) + "\n"


def _generate() -> None:
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "settings.md").write_text(_settings_table())
    (GENERATED / "environment.md").write_text(_environment_table())
    examples = GENERATED / "examples"
    examples.mkdir(exist_ok=True)
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        shutil.copyfile(notebook, examples / notebook.name)


_generate()
