"""The user's global Pi settings survive a notebook: what Pi writes there is put back."""

from __future__ import annotations

from pathlib import Path

from pi_kernel.agent_dir import agent_dir, settings_kept


def test_the_agent_dir_is_pi_s_variable_or_the_default_under_that_environment_s_home():
    assert agent_dir({"HOME": "/h", "PI_CODING_AGENT_DIR": "/elsewhere"}) == Path("/elsewhere")
    assert agent_dir({"HOME": "/h", "PI_CODING_AGENT_DIR": "~/pi"}) == Path("/h/pi")
    assert agent_dir({"HOME": "/h"}) == Path("/h/.pi/agent")


def test_bytes_pi_wrote_are_put_back_with_the_file_s_mode(tmp_path: Path):
    settings = tmp_path / "settings.json"
    settings.write_bytes(b'{"defaultModel": "mine"}\n')
    settings.chmod(0o600)
    with settings_kept(settings):
        settings.write_bytes(b'{"defaultModel": "the notebook s"}\n')
    assert settings.read_bytes() == b'{"defaultModel": "mine"}\n'
    assert settings.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_a_file_pi_created_is_removed_and_an_untouched_one_is_not_rewritten(tmp_path: Path):
    settings = tmp_path / "settings.json"
    with settings_kept(settings):
        settings.write_text("{}")
    assert not settings.exists()
    settings.write_text("{}")
    before = settings.stat().st_mtime_ns
    with settings_kept(settings):
        pass
    assert settings.stat().st_mtime_ns == before
