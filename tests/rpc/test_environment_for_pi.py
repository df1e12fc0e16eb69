"""What Pi's process inherits: the kernel's environment less the server's credentials.

The rules are checked here on their own; ``tests/kernel_tools/test_hidden_environment.py``
has a real Pi print its environment from a real kernel.
"""

from __future__ import annotations

from pi_kernel import variables
from pi_kernel.rpc.environment import for_pi, hidden_values

HUB = {
    "JUPYTERHUB_API_TOKEN": "hub-token-0123456789",
    "JPY_API_TOKEN": "hub-token-0123456789",
    "JUPYTERHUB_USER": "ada",
    "JUPYTER_TOKEN": "server-token-0123456789",
    "JUPYTER_GATEWAY_AUTH_TOKEN": "gateway-token-0123456789",
}
NEEDED = {
    "ANTHROPIC_API_KEY": "sk-ant-0123456789",
    "PI_CODING_AGENT_DIR": "/home/ada/.pi/agent",
    "PATH": "/usr/bin",
    "JUPYTER_PATH": "/opt/pi-kernel/share/jupyter",
}


def test_the_servers_credentials_are_kept_from_pi_and_provider_keys_are_not():
    assert for_pi({**HUB, **NEEDED}) == NEEDED


def test_the_setting_adds_names_and_patterns():
    env = {**NEEDED, "TEAM_DB_PASSWORD": "db-secret-0123", "TEAM_S3": "s3", "OTHER": "kept"}
    env[variables.HIDE_ENV] = "TEAM_*,  UNSET_NAME OTHER_*"
    assert for_pi(env) == {**NEEDED, "OTHER": "kept", variables.HIDE_ENV: env[variables.HIDE_ENV]}


def test_hidden_values_are_the_long_ones_left_out():
    assert hidden_values({**HUB, **NEEDED}) == {
        "hub-token-0123456789",
        "server-token-0123456789",
        "gateway-token-0123456789",
    }  # "ada" is too short to be told from a word
