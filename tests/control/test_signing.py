"""Signatures: what verifies, what is refused, and that keys never leak into reprs."""

from __future__ import annotations

import base64

import pytest

from spendfuse.control.errors import KeyConfigError
from spendfuse.control.keys import load_signer, write_key_pair
from spendfuse.control.signing import (
    SIGNATURE_HEADER,
    Verifier,
    VerifyOutcome,
    generate_ed25519_spec,
    parse_signer,
)

HMAC_SPEC = "hmac-sha256:" + base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize("spec", [generate_ed25519_spec(), HMAC_SPEC])
def test_signed_record_verifies_and_any_change_is_forged(spec: str) -> None:
    signer = parse_signer(spec)
    verifier = Verifier([signer.verify_key_spec()])
    key, value = b"use_case:bot", b'{"kind":"kill_switch"}'
    header = signer.sign(key, value)
    assert verifier.verify(key, value, header) == VerifyOutcome.OK
    assert verifier.verify(key, value + b" ", header) == VerifyOutcome.FORGED
    assert verifier.verify(b"use_case:other", value, header) == VerifyOutcome.FORGED
    assert verifier.verify(key, value, None) == VerifyOutcome.UNSIGNED
    assert verifier.verify(key, value, b"garbage") == VerifyOutcome.FORGED
    tampered = header[:-4] + (b"AAAA" if not header.endswith(b"AAAA") else b"BBBB")
    assert verifier.verify(key, value, tampered) == VerifyOutcome.FORGED


def test_signature_from_an_untrusted_key_is_refused() -> None:
    trusted = parse_signer(generate_ed25519_spec())
    attacker = parse_signer(generate_ed25519_spec())
    verifier = Verifier([trusted.verify_key_spec()])
    header = attacker.sign(b"k", b"v")
    assert verifier.verify(b"k", b"v", header) == VerifyOutcome.UNKNOWN_KEY
    # Claiming the trusted key id with the attacker's signature is a forgery.
    forged = header.replace(attacker.key_id.encode(), trusted.key_id.encode())
    assert verifier.verify(b"k", b"v", forged) == VerifyOutcome.FORGED


def test_signer_headers_and_repr_hold_no_key_material() -> None:
    spec = generate_ed25519_spec()
    signer = parse_signer(spec)
    assert signer.headers(b"k", b"v")[0][0] == SIGNATURE_HEADER
    assert spec.split(":", 1)[1] not in repr(signer)
    assert "kkkk" not in repr(parse_signer(HMAC_SPEC))
    assert HMAC_SPEC.split(":", 1)[1] not in repr(parse_signer(HMAC_SPEC))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ed25519", "expected '<alg>:<base64 key>'"),
        ("rsa:AAAA", "unknown algorithm 'rsa'"),
        ("ed25519:" + base64.b64encode(b"short").decode(), "32 bytes"),
        ("hmac-sha256:" + base64.b64encode(b"short").decode(), ">= 32 bytes"),
    ],
)
def test_bad_signing_key_is_refused_with_the_fix(spec: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match="signing key") as exc:
        parse_signer(spec)
    assert message in str(exc.value)


def test_verifier_needs_at_least_one_key() -> None:
    with pytest.raises(KeyConfigError, match="no verify key"):
        Verifier([])


def test_default_key_pair_is_created_once_private_and_reused(tmp_path) -> None:
    first = load_signer(None, None, tmp_path / "keys")
    private = tmp_path / "keys" / "control-signing.key"
    assert private.stat().st_mode & 0o777 == 0o600
    again = load_signer(None, None, tmp_path / "keys")
    assert again.key_id == first.key_id
    public = (tmp_path / "keys" / "control-verify.pub").read_text().strip()
    assert Verifier([public]).verify(b"k", b"v", again.sign(b"k", b"v")) == VerifyOutcome.OK


def test_key_file_is_read(tmp_path) -> None:
    private, _public, signer = write_key_pair(tmp_path)
    assert load_signer(None, private).key_id == signer.key_id
    with pytest.raises(KeyConfigError, match="cannot read key file"):
        load_signer(None, tmp_path / "missing.key")


def test_keys_from_the_environment_never_show_in_settings_dumps(monkeypatch) -> None:
    from spendfuse.gateway.config import GatewaySettings
    from spendfuse.settings import Settings

    spec = generate_ed25519_spec()
    monkeypatch.setenv("SPENDFUSE_CONTROL_SIGNING_KEY", spec)
    monkeypatch.setenv("SPENDFUSE_GATEWAY_VERIFY_KEYS", HMAC_SPEC)
    settings, gateway = Settings(), GatewaySettings()
    secret = spec.split(":", 1)[1]
    assert load_signer(settings.control_signing_key, None).key_id == parse_signer(spec).key_id
    assert secret not in repr(settings) and secret not in str(settings.masked())
    assert gateway.key_specs() == [HMAC_SPEC]
    assert HMAC_SPEC.split(":", 1)[1] not in repr(gateway)
