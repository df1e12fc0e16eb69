"""``python -m pi_kernel.kernel -f CONNECTION_FILE``: what the kernelspec runs."""

from ipykernel.kernelapp import IPKernelApp

from .pikernel import PiKernel

IPKernelApp.launch_instance(kernel_class=PiKernel)
