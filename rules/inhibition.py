"""Inhibition: an alert is muted while a *source* explains it (Alertmanager's inhibit_rules).

Sources are firing alerts and the active *enforced* control commands (a kill switch or degrade
on a target explains the lesser alerts about it); shadow commands explain nothing, since
gateways did not apply them. An alert never inhibits itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from spendfuse.rules.matchers import matches_all, parse_matcher
from spendfuse.rules.model import InhibitRule
from spendfuse.schemas.command import CommandKind, ControlCommand, TargetType


def command_source_labels(cmd: ControlCommand) -> dict[str, str] | None:
    """Labels of an active command as an inhibition source; None if it explains nothing."""
    if cmd.mode != "enforce" or cmd.kind is CommandKind.RESTORE:
        return None
    labels = {
        "action": cmd.kind.value,
        "target_type": cmd.target.type.value,
        "target_id": cmd.target.id,
        "fingerprint": f"command:{cmd.key()}",
        "tenant_id": cmd.tenant_id or "",
        "use_case_id": cmd.use_case_id or "",
        "severity": "critical",
    }
    if cmd.target.type is TargetType.TENANT:
        labels["tenant_id"] = cmd.target.id
    return labels


def inhibited_by(
    target: Mapping[str, str], sources: Iterable[Mapping[str, str]], rules: list[InhibitRule]
) -> str | None:
    """The fingerprint of a source that inhibits ``target``, or None."""
    for rule in rules:
        if not matches_all([parse_matcher(m) for m in rule.target_matchers], target):
            continue
        src_matchers = [parse_matcher(m) for m in rule.source_matchers]
        for source in sources:
            if source.get("fingerprint") == target.get("fingerprint"):
                continue
            if matches_all(src_matchers, source) and all(
                source.get(label, "") == target.get(label, "") for label in rule.equal
            ):
                return source.get("fingerprint", "?")
    return None
