"""Reload rule files on change: poll a directory's signature, validate, keep the old on error.

The worker calls :meth:`RulesWatcher.poll` from a timer every few seconds. A change is reloaded
only when *every* file validates; otherwise the errors are returned and the running rules stay.
Swapping the rule set keeps per-use-case state, which is keyed by rule name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from spendfuse.rules.errors import RuleFileError, RuleIssue
from spendfuse.rules.loader import load_rules, rule_files
from spendfuse.rules.ruleset import RuleSet


@dataclass(slots=True)
class ReloadResult:
    ruleset: RuleSet | None = None  # set when new rules validated and should be swapped in
    errors: list[RuleIssue] = field(default_factory=list)


def dir_signature(directory: Path) -> str:
    """Hash of the rule files' names and contents (mtime alone misses same-second edits)."""
    digest = hashlib.blake2b(digest_size=16)
    if directory.is_dir():
        for path in rule_files(directory):
            digest.update(path.name.encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
    return digest.hexdigest()


class RulesWatcher:
    def __init__(self, directory: Path, default_pack: bool = True) -> None:
        self.directory = Path(directory)
        self.default_pack = default_pack
        self.signature = dir_signature(self.directory)

    def poll(self) -> ReloadResult:
        signature = dir_signature(self.directory)
        if signature == self.signature:
            return ReloadResult()
        self.signature = signature  # a bad version is reported once, not on every poll
        try:
            return ReloadResult(load_rules(self.directory, self.default_pack))
        except RuleFileError as exc:
            return ReloadResult(errors=exc.issues)
