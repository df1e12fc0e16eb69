"""A Pi that cannot start, in the Pi kernel: a few lines, never a traceback wall, and the
kernel carries on (issue 18)."""

from __future__ import annotations

import pytest

from pi_kernel import variables
from tests.support.kernels import running_kernel, short_failure
from tests.support.pi_env import PiEnv


@pytest.mark.parametrize(
    ("variable", "value"),
    [(variables.PI_PATH, "/bin/false"), (variables.PI_PATH, "/nonexistent/pi")],
)
def test_a_pi_that_cannot_start_is_a_few_lines_in_the_pi_kernel(
    kernels_prefix: str, pi_env: PiEnv, variable: str, value: str
):
    env = {**pi_env.env, variable: value}
    with running_kernel(env=env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        failed = short_failure(kernel.execute("Hello"))
        assert value in failed
        assert short_failure(kernel.execute("%pi models"))
        assert kernel.execute("%%py\nprint(6 * 7)").text().strip() == "42"


def test_bogus_pi_arguments_are_a_few_lines_in_the_pi_kernel(kernels_prefix: str, pi_env: PiEnv):
    with running_kernel(env=pi_env.env, cwd=pi_env.cwd, kernel_name="pi") as kernel:
        kernel.execute("%config PiMagics.pi_args = ['--bogus-flag']")
        assert "exited during start-up" in short_failure(kernel.execute("Hello"))
