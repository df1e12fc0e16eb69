"""Installing the Pi kernel's kernelspec, the way ``python -m ipykernel install`` does.

The static files (``kernel.json`` template, logos) live in the repository's ``kernelspec/``
directory; the wheel carries them inside the package and also as data files, so a plain
``pip install`` already makes the kernel visible to Jupyter.  ``install`` writes a copy whose
``argv`` starts with this interpreter, so the kernel runs in the environment that installed
it, not whatever ``python`` is first on ``PATH``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from .. import variables
from ..rpc.launch import CHECKOUT, PiInstall

KERNEL_NAME = "pi"
DISPLAY_NAME = "Pi"


def resources() -> Path:
    """The kernelspec files: packaged in a wheel, or the repository's in a checkout."""
    packaged = Path(__file__).parents[1] / "resources" / "kernelspec"
    if packaged.is_dir() or CHECKOUT is None:
        return packaged
    return CHECKOUT / "kernelspec"


def install(
    *,
    user: bool = False,
    prefix: str | None = None,
    name: str = KERNEL_NAME,
    display_name: str = DISPLAY_NAME,
    pi: PiInstall | None = None,
) -> Path:
    """Install (or replace) the kernelspec; return the directory it went to.

    ``pi``: the Pi the kernel is to run, recorded in the spec's ``env`` (a wheel install has
    no checkout to find one in, and a spawner's PATH may not lead to one)."""
    with tempfile.TemporaryDirectory(prefix="pi-kernelspec-") as staging:
        spec_dir = Path(staging) / name
        shutil.copytree(resources(), spec_dir)
        spec_file = spec_dir / "kernel.json"
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        spec["argv"][0] = sys.executable
        spec["display_name"] = display_name
        if pi is not None:
            spec["env"] = {variables.PI_PATH: str(pi.path), variables.PI_RECORDED: str(pi.path)}
        spec_file.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        installed = KernelSpecManager().install_kernel_spec(
            str(spec_dir), kernel_name=name, user=user, prefix=prefix, replace=True
        )
    return Path(installed)


def recorded_pi(name: str = KERNEL_NAME) -> tuple[Path, str | None] | None:
    """Where Jupyter finds the kernelspec ``name``, and the Pi its ``env`` records (None
    when it records none); None when Jupyter finds no such kernelspec."""
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return Path(spec.resource_dir), variables.read(variables.PI_PATH, spec.env)


def uninstall(*, name: str = KERNEL_NAME, prefix: str | None = None) -> Path:
    """Remove the kernelspec (from ``prefix`` if given, else where Jupyter finds it)."""
    if prefix is not None:
        spec_dir = Path(prefix) / "share" / "jupyter" / "kernels" / name
        if not spec_dir.is_dir():
            raise NoSuchKernel(name)
        shutil.rmtree(spec_dir)
        return spec_dir
    return Path(KernelSpecManager().remove_kernel_spec(name))
