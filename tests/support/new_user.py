"""A fresh machine's user, for the main command: no Pi setup, no provider key, and (when a
test wants it) a local demo model whose weights are broken."""

from __future__ import annotations

import os
from pathlib import Path

from pi_kernel.launcher.local_model import WEIGHTS_FILE, WEIGHTS_PACKAGE


def new_user_env(root: Path) -> dict[str, str]:
    """This environment without Pi's variables or provider keys, HOME an empty directory."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PI_", "JUPYTER")) and not key.endswith("_API_KEY")
    }
    env.pop("XDG_STATE_HOME", None)
    env["HOME"] = str(home)
    return env


def broken_weights(root: Path) -> Path:
    """A directory to put first on PYTHONPATH: it shadows the weights package with one whose
    GGUF file is garbage, so the model server fails while loading it, as on a bad install."""
    package = root / "shadow" / WEIGHTS_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / WEIGHTS_FILE).write_bytes(b"not a GGUF file\n" * 64)
    return package.parent
