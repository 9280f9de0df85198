"""Load signing keys from settings or key files, or create the embedded default key pair.

Keys come from settings (``SPENDFUSE_CONTROL_SIGNING_KEY``, a ``SecretStr``), from a key file
(``SPENDFUSE_CONTROL_SIGNING_KEY_FILE``), or, for a worker on embedded defaults, from a key pair
generated once under ``<data dir>/keys``. Never from code, never into a log line: only the key
id and the *public* key file's path are ever printed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import SecretStr

from spendfuse.control.errors import KeyConfigError
from spendfuse.control.signing import Signer, generate_ed25519_spec, parse_signer

log = logging.getLogger(__name__)

PRIVATE_KEY_NAME = "control-signing.key"
PUBLIC_KEY_NAME = "control-verify.pub"
NO_SIGNING_KEY = (
    "no control signing key configured: set SPENDFUSE_CONTROL_SIGNING_KEY_FILE to the worker's "
    "signing key file (or SPENDFUSE_CONTROL_SIGNING_KEY to its spec), the key gateways trust. "
    "A new key (`spendfuse keygen`) is trusted by no gateway until its control-verify.pub is "
    "added to their SPENDFUSE_GATEWAY_VERIFY_KEYS(_FILE)"
)


def read_key_file(path: Path, what: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyConfigError(f"{what}: cannot read key file {path}: {exc.strerror}") from None
    if not text:
        raise KeyConfigError(f"{what}: key file {path} is empty")
    return text


def write_private(path: Path, text: str) -> None:
    """Write a secret file with mode 0600, whatever mode an existing file had, never through a
    symlink (``O_NOFOLLOW``): the mode passed to ``open`` applies only to new files, so an
    existing 0644 file is ``fchmod``-ed before a byte of the key is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def tighten_private(path: Path) -> None:
    """Force an existing private key file to mode 0600; a read-only mount (a Kubernetes secret)
    cannot be changed, and that is logged rather than refused."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, 0o600, follow_symlinks=False)
            log.warning("signing key file %s had mode %o: set to 600", path, mode)
    except (OSError, NotImplementedError) as exc:
        log.warning(
            "signing key file %s is readable by others and cannot be made 600: %s", path, exc
        )


def write_key_pair(directory: Path, spec: str | None = None) -> tuple[Path, Path, Signer]:
    """Write a private key file (mode 0600) and its public verify spec beside it."""
    spec = spec or generate_ed25519_spec()
    signer = parse_signer(spec)
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / PRIVATE_KEY_NAME
    write_private(private, spec + "\n")
    public = directory / PUBLIC_KEY_NAME
    public.write_text(signer.verify_key_spec() + "\n")
    return private, public, signer


def load_signer(
    key: SecretStr | None, key_file: Path | None, default_dir: Path | None = None
) -> Signer:
    """The signer the settings name; with none named, the default pair under ``default_dir``."""
    if key is not None:
        return parse_signer(key.get_secret_value())
    if key_file is not None:
        tighten_private(key_file)
        return parse_signer(read_key_file(key_file, "signing key"))
    if default_dir is None:
        raise KeyConfigError(NO_SIGNING_KEY)
    private = default_dir / PRIVATE_KEY_NAME
    if private.exists():
        tighten_private(private)
        return parse_signer(read_key_file(private, "signing key"))
    _, public, signer = write_key_pair(default_dir)
    log.warning(
        "no control signing key configured: generated key %s; gateways verify with %s",
        signer.key_id,
        public,
    )
    return signer
