"""pi-kernel: the Pi coding agent in Jupyter.

The rooms: ``rpc`` (the Pi client, a leaf), the engine beside it (``session``, ``turn``,
``blocks``, ``transcript``, ``choices``, ``agent_dir``, and ``records``: what leaves the kernel,
made harmless, exported and recorded), ``kernel`` (the Pi kernel) and ``launcher`` (the main
command); the notebook face lives in ``pi_magics``.
Nothing in this package imports IPython below ``kernel`` (import-linter checks it).

Logging is silent unless ``PI_KERNEL_LOG`` names a level (``debug`` or ``info``): then
pi-kernel's lifecycle (Pi started and stopped, each command with its id and time, each run's
settling) goes to stderr, which for a kernel is the Jupyter server's terminal.  Commands are
logged by name and id only, never with their contents.
"""

import logging
import sys

from . import variables

__version__ = "0.1.0"


def _log_to_stderr(level: str) -> None:
    """What ``PI_KERNEL_LOG`` asks for; a value that is not a level is said once, and ignored."""
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        print(
            f"pi-kernel: {variables.LOG}={level!r} is not a logging level; use debug or info.",
            file=sys.stderr,
        )
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    for name in ("pi_kernel", "pi_magics"):
        logger = logging.getLogger(name)
        logger.setLevel(number)
        logger.addHandler(handler)


_level = variables.read(variables.LOG)
if _level:
    _log_to_stderr(_level)
