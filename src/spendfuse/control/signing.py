"""Sign and verify control commands: Ed25519 (default) or HMAC-SHA256 with a shared key.

Pure: no I/O, no clock. The signature travels in the record header ``spendfuse-signature`` and
covers the exact record key and value bytes (no re-serialization to agree on), behind a domain
prefix so that a signature can never be reused for anything but a control record. Binding the key
stops a valid command from being re-published under another target's key.

Header value: ``v1.<alg>.<key id>.<base64url signature>``, where ``alg`` is ``ed25519`` or
``hmac-sha256`` and the key id is derived from the public key (or the shared key), so gateways can
hold several verify keys during a rotation.

Key specs are strings, as they come from settings or a key file:
``ed25519:<base64 32-byte private seed>`` (signer), ``ed25519-pub:<base64 32-byte public key>``
(verifier), ``hmac-sha256:<base64 secret, at least 32 bytes>`` (both).

A verifier is pinned to one algorithm (given, or the one all its keys share): a header naming
another is refused before any key is looked up, and a private ``ed25519:`` seed is refused as a
verify key (it would put the signing key on every gateway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spendfuse.control.errors import KeyConfigError

SIGNATURE_HEADER = "spendfuse-signature"
_DOMAIN = b"spendfuse-control-v1\n"
ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
_MIN_HMAC_BYTES = 32


def signed_message(key: bytes, value: bytes) -> bytes:
    """What is signed: a domain prefix, the record key's length and bytes, then the value."""
    return _DOMAIN + len(key).to_bytes(4, "big") + key + value


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), validate=False)
    except ValueError:
        raise KeyConfigError(f"{what}: the key is not valid base64") from None


def _key_id(material: bytes, alg: str) -> str:
    return hashlib.sha256(alg.encode() + b":" + material).hexdigest()[:12]


def _split_spec(spec: str, what: str) -> tuple[str, bytes]:
    alg, sep, body = spec.strip().partition(":")
    if not sep or not body:
        raise KeyConfigError(
            f"{what}: expected '<alg>:<base64 key>' with alg ed25519, ed25519-pub or hmac-sha256"
        )
    return alg.lower(), _b64decode(body, what)


@dataclass(frozen=True)
class Signer:
    """Signs control records with one private (or shared) key."""

    alg: str
    key_id: str
    _ed: Ed25519PrivateKey | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    def sign(self, key: bytes, value: bytes) -> bytes:
        """Return the ``spendfuse-signature`` header value for a record."""
        message = signed_message(key, value)
        if self._ed is not None:
            raw = self._ed.sign(message)
        else:
            assert self._secret is not None
            raw = hmac.new(self._secret, message, hashlib.sha256).digest()
        sig = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return f"v1.{self.alg}.{self.key_id}.{sig}".encode()

    def headers(self, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
        return [(SIGNATURE_HEADER, self.sign(key, value))]

    def verify_key_spec(self) -> str:
        """The spec gateways verify with (the public key for Ed25519; the secret for HMAC)."""
        if self._ed is not None:
            pub = self._ed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return f"ed25519-pub:{base64.b64encode(pub).decode()}"
        assert self._secret is not None
        return f"{HMAC_SHA256}:{base64.b64encode(self._secret).decode()}"


def parse_signer(spec: str) -> Signer:
    """Build a signer from ``ed25519:<seed>`` or ``hmac-sha256:<secret>``."""
    alg, material = _split_spec(spec, "signing key")
    if alg == ED25519:
        if len(material) != 32:
            raise KeyConfigError("signing key: an ed25519 private seed is 32 bytes")
        ed = Ed25519PrivateKey.from_private_bytes(material)
        pub = ed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Signer(ED25519, _key_id(pub, ED25519), _ed=ed)
    if alg == HMAC_SHA256:
        if len(material) < _MIN_HMAC_BYTES:
            raise KeyConfigError(
                f"signing key: an hmac-sha256 key needs >= {_MIN_HMAC_BYTES} bytes"
            )
        return Signer(HMAC_SHA256, _key_id(material, HMAC_SHA256), _secret=material)
    raise KeyConfigError(f"signing key: unknown algorithm {alg!r}; use ed25519 or hmac-sha256")


def generate_ed25519_spec() -> str:
    """A fresh ``ed25519:<seed>`` private key spec."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return f"{ED25519}:{base64.b64encode(seed).decode()}"


class VerifyOutcome:
    """Why a record was refused (or ``OK``); the reason strings are the gateway's counter names."""

    OK = "ok"
    UNSIGNED = "unsigned"
    FORGED = "forged"
    UNKNOWN_KEY = "unknown_key"
    WRONG_ALGORITHM = "wrong_algorithm"


ALGORITHMS = (ED25519, HMAC_SHA256)


class Verifier:
    """Checks ``spendfuse-signature`` headers against a set of verify keys (by key id)."""

    def __init__(self, specs: Iterable[str], algorithm: str | None = None) -> None:
        self._ed: dict[str, Ed25519PublicKey] = {}
        self._hmac: dict[str, bytes] = {}
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise KeyConfigError(
                f"signature algorithm {algorithm!r} is not supported: use one of {ALGORITHMS}"
            )
        for spec in specs:
            self._add(spec)
        if not (self._ed or self._hmac):
            raise KeyConfigError(
                "no verify key configured: set SPENDFUSE_GATEWAY_VERIFY_KEYS (or _FILE) to the "
                "worker's public key spec (`spendfuse keygen` prints it)"
            )
        held = {alg for alg, keys in ((ED25519, self._ed), (HMAC_SHA256, self._hmac)) if keys}
        if algorithm is None and len(held) > 1:
            raise KeyConfigError(
                "verify keys mix ed25519 and hmac-sha256: pin one algorithm "
                "(SPENDFUSE_GATEWAY_SIGNATURE_ALGORITHM) and keep only its keys"
            )
        self.algorithm: str = algorithm or held.pop()
        if held - {self.algorithm} or (algorithm is not None and algorithm not in held):
            raise KeyConfigError(
                f"verify keys are not all {self.algorithm}: the signature algorithm is pinned; "
                "set SPENDFUSE_GATEWAY_SIGNATURE_ALGORITHM to the algorithm of your keys "
                "(ed25519 or hmac-sha256) and remove keys of any other"
            )

    def _add(self, spec: str) -> None:
        alg, material = _split_spec(spec, "verify key")
        if alg == ED25519:
            raise KeyConfigError(
                "verify key: this is an ed25519 *private* seed (ed25519:...); a gateway must hold "
                "only the public key: use the ed25519-pub:... line `spendfuse keygen` wrote to "
                "control-verify.pub, and keep the private key on the signing side"
            )
        if alg == "ed25519-pub":
            if len(material) != 32:
                raise KeyConfigError("verify key: an ed25519 public key is 32 bytes")
            self._ed[_key_id(material, ED25519)] = Ed25519PublicKey.from_public_bytes(material)
        elif alg == HMAC_SHA256:
            if len(material) < _MIN_HMAC_BYTES:
                raise KeyConfigError(
                    f"verify key: an hmac-sha256 key needs >= {_MIN_HMAC_BYTES} bytes"
                )
            self._hmac[_key_id(material, HMAC_SHA256)] = material
        else:
            raise KeyConfigError(f"verify key: unknown algorithm {alg!r}")

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ed) | frozenset(self._hmac)

    def verify(self, key: bytes, value: bytes, header: bytes | None) -> str:
        """Return :attr:`VerifyOutcome.OK` or the reason the record must be refused."""
        if not header:
            return VerifyOutcome.UNSIGNED
        try:
            version, alg, kid, sig_text = header.decode("ascii").split(".", 3)
            sig = base64.urlsafe_b64decode(sig_text + "=" * (-len(sig_text) % 4))
        except (UnicodeDecodeError, ValueError):
            return VerifyOutcome.FORGED
        if version != "v1":
            return VerifyOutcome.FORGED
        if alg != self.algorithm:  # pinned: never let the header choose how it is checked
            return VerifyOutcome.WRONG_ALGORITHM
        message = signed_message(key, value)
        if alg == ED25519:
            pub = self._ed.get(kid)
            if pub is None:
                return VerifyOutcome.UNKNOWN_KEY
            try:
                pub.verify(sig, message)
            except InvalidSignature:
                return VerifyOutcome.FORGED
            return VerifyOutcome.OK
        if alg == HMAC_SHA256:
            secret = self._hmac.get(kid)
            if secret is None:
                return VerifyOutcome.UNKNOWN_KEY
            expected = hmac.new(secret, message, hashlib.sha256).digest()
            return VerifyOutcome.OK if hmac.compare_digest(expected, sig) else VerifyOutcome.FORGED
        return VerifyOutcome.FORGED


def signature_header(headers: Iterable[tuple[str, bytes | None]] | None) -> bytes | None:
    """Pick the ``spendfuse-signature`` header out of a Kafka record's headers."""
    for name, value in headers or ():
        if name == SIGNATURE_HEADER:
            return value
    return None
