"""pi-kernel: the Pi coding agent in Jupyter.

The engine lives here (``pi_kernel.rpc``, ``pi_kernel.session``); the notebook face lives in
``pi_magics``. Nothing in this package imports IPython below ``kernel``.
"""

__version__ = "0.1.0"
