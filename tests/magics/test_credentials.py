"""Credential-like names in the read tools' replies, without a kernel: which names, which
literals, which values."""

from __future__ import annotations

import pytest

from pi_magics.credentials import Credentials, split_patterns

KEY = "sk-abc123def456ghi789"


@pytest.mark.parametrize(
    "name",
    ["API_KEY", "openai_api_key", "db_password", "token", "SECRET", "aws_credentials", "auth"],
)
def test_names_that_say_key_token_secret_password_credential_or_auth_are_credential_like(
    name: str,
):
    assert Credentials().named(name)


def test_added_patterns_match_without_regard_to_case():
    credentials = Credentials(split_patterns("*_pin, DSN"))
    assert credentials.named("CARD_PIN")
    assert credentials.named("dsn")
    assert not credentials.named("prices")


@pytest.mark.parametrize(
    "code",
    [
        f'API_KEY = "{KEY}"',
        f"api_key: str = '{KEY}'",
        f'client = Client(api_key="{KEY}", retries=3)',
        f'config = {{"password": "{KEY}", "user": "ada"}}',
        f'os.environ["OPENAI_API_KEY"] = "{KEY}"',
        f'os.environ.setdefault("OPENAI_API_KEY", "{KEY}")',
        f'self.token = f"{KEY}"',
        f'if token == "{KEY}":\n    pass',
        f'SECRET = """\n{KEY}\n"""',
    ],
)
def test_a_literal_given_to_a_credential_like_name_is_masked(code: str):
    hidden = Credentials().hide(code, {})
    assert KEY not in hidden
    assert "[redacted]" in hidden


def test_other_literals_stay():
    code = 'name = "Ada"\nprint("tokens", len(text))\nurl = "https://example.com/api"'
    assert Credentials().hide(code, {}) == code
    masked = Credentials().hide(f'user = "ada"; password = "{KEY}"; host = "db"', {})
    assert masked == 'user = "ada"; password = "[redacted]"; host = "db"'


def test_the_values_credential_like_names_hold_are_taken_out_wherever_they_appear():
    namespace = {"db_password": "correct horse battery", "pin_token": b"0123456789", "n": 3}
    text = "Result: 'correct horse battery'\nprinted 0123456789 and 3"
    hidden = Credentials().hide(text, namespace)
    assert hidden == "Result: '[redacted]'\nprinted [redacted] and 3"


def test_short_values_are_not_replaced_in_text():
    assert Credentials().hide("the key is in the door", {"key": "door"}) == (
        "the key is in the door"
    )
