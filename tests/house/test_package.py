"""The sdist and wheel a release would upload: built as a release builds them, checked as
PyPI checks them (``twine check``), and holding what a user needs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pi_kernel import __version__

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live  # builds take seconds: not for the edit loop


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The locked hatchling, not a fresh download: what is built is what the lock holds.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_twine_accepts_the_sdist_and_the_wheel(dist: Path):
    files = sorted(dist.iterdir())
    assert sorted(path.suffix for path in files) == [".gz", ".whl"], files
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_wheel_carries_the_extension_the_kernelspec_and_the_licence(dist: Path):
    (wheel,) = dist.glob(f"pi_kernel-{__version__}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "pi_kernel/kernel_tools/extension.js" in names
    kernelspec = f"pi_kernel-{__version__}.data/data/share/jupyter/kernels/pi"
    for part in ("kernel.json", "logo-32x32.png", "logo-64x64.png"):
        assert f"{kernelspec}/{part}" in names, sorted(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_sdist_holds_the_source_and_no_installed_packages(dist: Path):
    (sdist,) = dist.glob(f"pi_kernel-{__version__}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = f"pi_kernel-{__version__}"
    for part in ("LICENSE", "CHANGELOG.md", "README.md", "src/pi_kernel/kernel_tools/extension.js"):
        assert f"{root}/{part}" in names
    assert not [name for name in names if "node_modules" in name or "/.venv/" in name]
