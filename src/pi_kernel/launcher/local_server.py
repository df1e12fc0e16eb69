"""The local model's server process: llama.cpp's own server, from the ``xllamacpp`` wheel.

``python -m pi_kernel.launcher.local_server --model PATH --context N --alias NAME`` loads
the weights, listens on a free port of 127.0.0.1, prints ``ready <base url>`` on stdout (the
one line it writes there; llama.cpp logs to stderr) and serves until SIGTERM.  Requests
must carry the key given in ``PI_KERNEL_LOCAL_KEY`` (an environment variable, so that it is
not in ``ps``).

xllamacpp runs llama.cpp's C++ server inside the Python process and has no command line of
its own: this module is that command line.  It runs in its own process so that the model's
memory and threads end with it.  ``xllamacpp`` (``pi-kernel[local]``) is imported only
there, inside ``main``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .. import variables

HOST = "127.0.0.1"


READY = "ready "
"""Its first line on stdout, before its base URL, once it accepts requests."""
FAILED = "failed "
"""Its line on stdout before why it could not start.  The launcher reads this, not the log's
last line: llama.cpp's threads may write their own log lines after ours."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi_kernel.launcher.local_server")
    parser.add_argument("--model", required=True, help="the GGUF file to serve")
    parser.add_argument("--context", type=int, required=True, help="context size in tokens")
    parser.add_argument("--alias", required=True, help="the model's name in requests")
    args = parser.parse_args(argv)
    key = variables.read(variables.LOCAL_KEY)
    if not key:
        print(
            f"local_server: {variables.LOCAL_KEY} is not set; "
            "it holds the key requests must carry.",
            file=sys.stderr,
        )
        return 2

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.context
    params.model_alias = {args.alias}  # a set of names: a plain string is taken letter by letter
    params.hostnames = [HOST]
    params.port = 0  # llama.cpp binds a free port and reports it in listening_address
    params.api_keys = [key]  # only our Pi: not other local users, not a web page's script
    params.ui = False  # no chat page on this port: it serves Pi only
    # Threads: llama.cpp's default, one per physical core.  On 2 cores, during the tour, 2
    # threads read Pi's prompt at about 100 tokens/s and wrote 33/s; 1 thread, 57 and 21-26/s.
    try:
        server = xllamacpp.Server(params)  # returns once the weights are loaded and it listens
    except RuntimeError:  # its own reasons are in the log lines above
        failure = f"llama.cpp could not load the weights {args.model}"
        print(failure, file=sys.stderr, flush=True)
        print(f"{FAILED}{failure}", flush=True)
        return 1
    print(f"{READY}{server.listening_address}/v1", flush=True)
    # llama.cpp serves from its own threads; this one only waits.  SIGTERM's default action
    # ends the process, threads and all.
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
