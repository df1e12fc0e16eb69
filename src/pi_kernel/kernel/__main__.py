"""``python -m pi_kernel.kernel -f CONNECTION_FILE``: what the kernelspec runs.

Pi is started first, before IPython and ipykernel are imported (``pi_kernel.early``): the
kernel's imports and Pi's own start then run side by side instead of one after the other.
"""

import sys

from pi_kernel import early

early.start(early.connection_file(sys.argv))

from ipykernel.kernelapp import IPKernelApp  # noqa: E402  (after Pi's start, on purpose)

from .pikernel import PiKernel  # noqa: E402

IPKernelApp.launch_instance(kernel_class=PiKernel)
