"""`rigdeck serve`: keys made, listed, shown and revoked; what is refused, refused with the
reason and exit 2 — an address other machines reach without a key, a port in use, an
unknown backend, no keyring."""

from __future__ import annotations

import socket

import pytest

from app.cli.main import main
from app.paths import AppPaths
from tests.realparts.process_keyring import ProcessKeyring


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["serve", *args])
    said = capsys.readouterr()
    return code, said.out, said.err


def test_keys_are_created_listed_shown_and_revoked(
        capsys: pytest.CaptureFixture[str], working_keyring: ProcessKeyring,
        app_paths: AppPaths) -> None:
    code, out, _ = run(capsys, "keys", "create", "n8n")
    key = out.splitlines()[0]
    assert code == 0
    assert key.startswith("rdk-")
    assert working_keyring.store[("rigdeck", "gateway-key:n8n")] == key
    code, out, _ = run(capsys, "keys", "list")
    assert "n8n" in out
    assert key not in out
    assert f"…{key[-4:]}" in out
    assert run(capsys, "keys", "show", "n8n")[1].strip() == key
    assert run(capsys, "keys", "revoke", "n8n")[:2] == (0, "revoked n8n\n")
    code, _, err = run(capsys, "keys", "revoke", "n8n")
    assert code == 2
    assert "no gateway key named 'n8n'" in err
    assert (app_paths.config / "gateway_keys.toml").is_file()


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_no_key_is_made(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keys", "create", "n8n")
    assert code == 2
    assert out == ""
    assert "No system keyring is available" in err


def test_an_address_other_machines_reach_needs_a_key_first(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--address", "0.0.0.0", "--port", "0")
    assert code == 2
    assert "create a gateway key first" in err
    assert "rigdeck serve keys create NAME" in err


def test_a_port_in_use_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run(capsys, "--port", str(taken.getsockname()[1]))
    assert code == 2
    assert "cannot listen on 127.0.0.1" in err
    assert "choose another" in err


def test_idle_times_are_set_only_for_saved_plans(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ttl", "qwen", "600")
    assert code == 2
    assert "no saved plan for a backend named 'qwen'" in err
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "no model ids" in out
