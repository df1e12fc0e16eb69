"""The documentation site builds with warnings as errors, its configuration reference names
every setting and environment variable, and the example notebooks render with their saved
outputs."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

import pytest

from pi_kernel import variables
from pi_magics.settings import PiSettings

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live  # a Sphinx build takes seconds: not for the edit loop


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(REPO / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def text_of(page: Path) -> str:
    return html.unescape(page.read_text())


def test_the_reference_names_every_setting_and_every_variable(site: Path):
    reference = text_of(site / "configuration.html")
    for name in PiSettings.class_traits(config=True):
        assert f"PiMagics.{name}" in reference, name
    for variable in variables.VARIABLES:
        assert variable.name in reference, variable.name


def test_the_example_notebooks_render_with_their_saved_outputs(site: Path):
    pages = sorted((site / "generated" / "examples").glob("*.html"))
    assert [page.stem for page in pages] == sorted(
        path.stem for path in (REPO / "notebooks").glob("*.ipynb")
    )
    tour = text_of(site / "generated" / "examples" / "tour.html")
    assert "In one sentence: what does a Jupyter kernel do?" in tour  # a cell's source
    assert "scripted/plain · thinking off" in tour  # an answer's footer, as recorded
