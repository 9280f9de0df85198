"""Route an alert to its receiver(s), Alertmanager's way, from the rule files' ``route`` tree.

The root route matches every alert. A child whose matchers match takes the alert (depth first);
siblings after it are only tried when it says ``continue: true``. A node with no matching child
is where the alert goes. Children inherit ``receiver``, ``group_by`` and the three intervals.

Owner routing: an alert labelled ``owner`` (a budget's owner) also goes to that owner, as well
as wherever the tree sends it. An owner that names a receiver goes to that receiver; an owner
that is a Slack channel (``#team``) goes to the synthetic receiver ``owner:#team``, which posts
to that channel with the root's grouping and timing. Other owners (an email address) are a
label only: nothing in spendfuse can deliver to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from spendfuse.rules.matchers import matches_all, parse_matcher
from spendfuse.rules.model import RouteSpec
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.alert import Alert


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """Where an alert goes and how its notifications are grouped and timed."""

    receiver: str
    channel: str | None
    group_by: tuple[str, ...]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int


_DEFAULT = RouteTarget("console", None, ("tenant_id", "use_case_id"), 30, 300, 4 * 3600)


def alert_labels(alert: Alert) -> dict[str, str]:
    """Labels routes, inhibition and silences match on: the alert's labels plus its identity."""
    return {
        **alert.labels,
        "alertname": alert.rule,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "tenant_id": alert.tenant_id,
        "use_case_id": alert.use_case_id,
        "fingerprint": alert.fingerprint,
    }


def _inherit(parent: RouteTarget, node: RouteSpec, rs: RuleSet) -> RouteTarget:
    receiver = node.receiver or parent.receiver
    spec = rs.receivers.get(receiver)
    channel = spec.slack.channel if spec and spec.slack else None
    return RouteTarget(
        receiver,
        channel,
        tuple(node.group_by) if node.group_by is not None else parent.group_by,
        node.group_wait.seconds if node.group_wait else parent.group_wait_s,
        node.group_interval.seconds if node.group_interval else parent.group_interval_s,
        node.repeat_interval.seconds if node.repeat_interval else parent.repeat_interval_s,
    )


def _walk(
    node: RouteSpec, here: RouteTarget, labels: dict[str, str], rs: RuleSet
) -> list[RouteTarget]:
    found: list[RouteTarget] = []
    for child in node.routes:
        if not matches_all([parse_matcher(m) for m in child.matchers], labels):
            continue
        found.extend(_walk(child, _inherit(here, child, rs), labels, rs))
        if not child.continue_:
            break
    return found or [here]


OWNER_PREFIX = "owner:"


def owner_target(owner: str, root: RouteTarget, rs: RuleSet) -> RouteTarget | None:
    """Where a budget owner is told, or None when the owner is not deliverable."""
    if owner in rs.receivers:
        spec = rs.receivers[owner]
        channel = spec.slack.channel if spec.slack else None
        return RouteTarget(
            owner,
            channel,
            root.group_by,
            root.group_wait_s,
            root.group_interval_s,
            root.repeat_interval_s,
        )
    if owner.startswith("#") and len(owner) > 1:
        return RouteTarget(
            OWNER_PREFIX + owner,
            owner,
            root.group_by,
            root.group_wait_s,
            root.group_interval_s,
            root.repeat_interval_s,
        )
    return None


def route(alert: Alert, rs: RuleSet) -> list[RouteTarget]:
    """Every receiver the alert goes to: the route tree's, plus the budget owner's."""
    root = _DEFAULT if rs.route is None else _inherit(_DEFAULT, rs.route, rs)
    found = [root] if rs.route is None else _walk(rs.route, root, alert_labels(alert), rs)
    owner = alert.labels.get("owner")
    extra = owner_target(owner, root, rs) if owner else None
    if extra is not None and all(
        (t.receiver, t.channel) != (extra.receiver, extra.channel)
        and not (extra.channel and t.channel == extra.channel)
        for t in found
    ):
        found.append(extra)
    return found
