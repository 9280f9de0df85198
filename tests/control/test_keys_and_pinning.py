"""Key handling: private key files 0600, no private seed on a gateway, one pinned algorithm, no
silently generated key for operators."""

from __future__ import annotations

import base64
import os

import pytest
from click.testing import CliRunner

from spendfuse.control.errors import KeyConfigError
from spendfuse.control.keys import NO_SIGNING_KEY, load_signer, write_key_pair
from spendfuse.control.signing import Verifier, VerifyOutcome, generate_ed25519_spec, parse_signer

HMAC_SPEC = "hmac-sha256:" + base64.b64encode(b"k" * 32).decode()


def test_existing_private_key_file_is_forced_to_0600(tmp_path) -> None:
    private = tmp_path / "control-signing.key"
    private.write_text("old")
    os.chmod(private, 0o644)
    write_key_pair(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    os.chmod(private, 0o644)  # loosened later by hand: loading tightens it again
    load_signer(None, private)
    assert private.stat().st_mode & 0o777 == 0o600


def test_key_file_is_never_written_through_a_symlink(tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("do not overwrite")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "control-signing.key").symlink_to(elsewhere)
    with pytest.raises(OSError):
        write_key_pair(tmp_path / "keys")
    assert elsewhere.read_text() == "do not overwrite"


def test_gateway_refuses_a_private_seed_as_verify_key() -> None:
    with pytest.raises(KeyConfigError, match="private"):
        Verifier([generate_ed25519_spec()])


def test_signature_algorithm_is_pinned() -> None:
    ed = parse_signer(generate_ed25519_spec())
    hm = parse_signer(HMAC_SPEC)
    verifier = Verifier([ed.verify_key_spec()])
    assert verifier.algorithm == "ed25519"
    key, value = b"use_case:bot", b"{}"
    assert verifier.verify(key, value, hm.sign(key, value)) == VerifyOutcome.WRONG_ALGORITHM
    with pytest.raises(KeyConfigError, match="pin one algorithm"):
        Verifier([ed.verify_key_spec(), hm.verify_key_spec()])
    with pytest.raises(KeyConfigError, match="not all hmac-sha256"):
        Verifier([ed.verify_key_spec()], "hmac-sha256")
    both = Verifier([hm.verify_key_spec()], "hmac-sha256")
    assert both.verify(key, value, ed.sign(key, value)) == VerifyOutcome.WRONG_ALGORITHM
    assert both.verify(key, value, hm.sign(key, value)) == VerifyOutcome.OK


def test_operator_commands_refuse_to_run_without_a_signing_key(tmp_path, monkeypatch) -> None:
    from spendfuse.cli import main

    for name in ("SPENDFUSE_CONTROL_SIGNING_KEY", "SPENDFUSE_CONTROL_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPENDFUSE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for args in (
        ["kill", "use_case", "bot"],
        ["degrade", "use_case", "bot"],
        ["restore", "use_case", "bot"],
    ):
        result = CliRunner().invoke(
            main, [*args, "--reason", "t", "--bootstrap-servers", "127.0.0.1:1"]
        )
        assert result.exit_code != 0
        assert "SPENDFUSE_CONTROL_SIGNING_KEY_FILE" in result.output
        assert "published" not in result.output
    assert not list(tmp_path.rglob("control-signing.key"))  # no key generated on the spot
    with pytest.raises(KeyConfigError) as info:
        load_signer(None, None)
    assert str(info.value) == NO_SIGNING_KEY
