"""The local model's server command without its key (its serving is in test_local_model,
against the real weights)."""

from __future__ import annotations

import pytest

from pi_kernel import variables
from pi_kernel.launcher import local_server


def test_without_a_key_the_server_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv(variables.LOCAL_KEY, raising=False)
    code = local_server.main(["--model", "unused.gguf", "--context", "512", "--alias", "m"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"local_server: {variables.LOCAL_KEY} is not set; it holds the key requests must carry.\n"
    )
