"""JupyterHub's configuration for the deployment tests; ``tests/hub/hub.py`` starts the hub
with it and writes what varies (ports, paths, tokens) to the JSON file named by
``$PI_KERNEL_TEST_HUB_SETTINGS``.

Loaded by JupyterHub (``jupyterhub -f``), not imported: ``get_config`` comes from traitlets.
"""

import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821
settings = json.loads(Path(os.environ["PI_KERNEL_TEST_HUB_SETTINGS"]).read_text(encoding="utf-8"))
state = Path(settings["state_dir"])
users_root = Path(settings["users_root"])

# Everything on 127.0.0.1; all state in the test's directory.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = settings["proxy_command"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")

# A spawn request is answered at once (202), so the test can start several servers together.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

# Users exist only through the REST API: nobody logs in.
c.JupyterHub.authenticator_class = "null"

# One local process per user, all under the test's own uid (see the test's docstring for what
# that cannot isolate).
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(users_root / "{username}" / "home")
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
if os.geteuid() == 0:  # CI runs the suite as root; Jupyter refuses to unless told
    c.Spawner.args = ["--allow-root"]
c.Spawner.environment = {
    **settings["environment"],
    # Each user their own Pi agent dir, so their own provider key (written by the test).
    "PI_CODING_AGENT_DIR": lambda spawner: str(users_root / spawner.user.name / "agent"),
    # Some users' Pis run in pi-kernel's sandbox, as a shared server's should.
    "PI_KERNEL_SANDBOX": lambda spawner: "1" if spawner.user.name in settings["sandboxed"] else "0",
}
# Generous for a busy 2-core machine; the test's own deadlines are the real bounds.
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
# A server that ignores SIGINT is sent SIGTERM, then SIGKILL, each after this many seconds.
c.LocalProcessSpawner.interrupt_timeout = 10
c.LocalProcessSpawner.term_timeout = 5
c.LocalProcessSpawner.kill_timeout = 5

# The hub learns of the proxy's traffic every second (the servers report their own activity
# every JUPYTERHUB_ACTIVITY_INTERVAL seconds), so the culler sees idleness as it happens.
c.JupyterHub.last_activity_interval = 1

# Services outside the hub (the test itself, the idle culler), each with its token and role.
c.JupyterHub.services = [
    {"name": service["name"], "api_token": service["api_token"]} for service in settings["services"]
]
c.JupyterHub.load_roles = [
    {"name": f"{service['name']}-role", "scopes": service["scopes"], "services": [service["name"]]}
    for service in settings["services"]
]
