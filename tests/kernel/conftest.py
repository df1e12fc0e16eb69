"""In the Pi kernel's own tests, ``kernel`` is a Pi kernel (the root conftest's
``pi_kernel``), not the python3 kernel with the magics loaded."""

from __future__ import annotations

import pytest

from tests.support.kernels import KernelHarness


@pytest.fixture
def kernel(pi_kernel: KernelHarness) -> KernelHarness:
    return pi_kernel
