"""``python -m pi_kernel.kernel -f CONNECTION_FILE``: what the kernelspec runs.

Pi is started first, before IPython and ipykernel are imported (``pi_kernel.early``): the
kernel's imports and Pi's own start then run side by side instead of one after the other.
"""

import gc
import sys

# Python's cycle collector runs over a hundred times while the kernel imports its thousands
# of classes, and finds next to nothing to free: off until the kernel is set up (30 to 50 ms
# of a cold start), on again before it takes its first message.
gc.disable()

from pi_kernel import early  # noqa: E402

early.start(early.connection_file(sys.argv))

from ipykernel.kernelapp import IPKernelApp  # noqa: E402  (after Pi's start, on purpose)

from .pikernel import PiKernel  # noqa: E402

app = IPKernelApp.instance(kernel_class=PiKernel)
try:
    app.initialize()  # type: ignore[no-untyped-call]  # ipykernel is untyped
finally:
    gc.enable()
app.start()  # type: ignore[no-untyped-call]
