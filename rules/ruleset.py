"""A validated, merged set of rule files: what the engine runs and the notifier routes by.

Files merge in name order; a later rule, budget, quota or tenant with the same name (tenant id)
replaces an earlier one, so a deployment's rules directory can override the default pack rule
by rule. The last ``route`` given wins; inhibit rules and receivers accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from spendfuse.rules.errors import RuleFileError, RuleIssue
from spendfuse.rules.model import (
    BudgetSpec,
    InhibitRule,
    ReceiverSpec,
    RouteSpec,
    RuleFile,
    RuleSpec,
    TenantSpec,
)

_UTC = TenantSpec(tenant_id="*")


@dataclass(slots=True)
class RuleSet:
    rules: dict[str, RuleSpec] = field(default_factory=dict)
    budgets: dict[str, BudgetSpec] = field(default_factory=dict)
    quotas: dict[str, BudgetSpec] = field(default_factory=dict)
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    route: RouteSpec | None = None
    inhibit_rules: list[InhibitRule] = field(default_factory=list)
    receivers: dict[str, ReceiverSpec] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def tenant(self, tenant_id: str) -> TenantSpec:
        return self.tenants.get(tenant_id, _UTC)

    def tz(self, tenant_id: str) -> ZoneInfo:
        return ZoneInfo(self.tenant(tenant_id).time_zone)

    def budgets_for(
        self, tenant_id: str, use_case_id: str | None, kind: str = "budget"
    ) -> list[BudgetSpec]:
        """Budgets of one use case, or (``use_case_id=None``) the tenant-wide ones."""
        table = self.budgets if kind == "budget" else self.quotas
        return [
            b for b in table.values() if b.tenant_id == tenant_id and b.use_case_id == use_case_id
        ]

    def enabled_rules(self, per: str) -> list[RuleSpec]:
        return [r for r in self.rules.values() if r.enabled and r.per == per]


def merge_files(files: list[tuple[str, RuleFile]], base: RuleSet | None = None) -> RuleSet:
    out = RuleSet() if base is None else _copy(base)
    for name, rf in files:
        out.sources.append(name)
        out.rules.update({r.name: r for r in rf.rules})
        out.budgets.update({b.name: b for b in rf.budgets})
        out.quotas.update({q.name: q for q in rf.quotas})
        out.tenants.update({t.tenant_id: t for t in rf.tenants})
        out.receivers.update({r.name: r for r in rf.receivers})
        out.inhibit_rules.extend(rf.inhibit_rules)
        if rf.route is not None:
            out.route = rf.route
    _check_receivers(out)
    return out


def _copy(base: RuleSet) -> RuleSet:
    return RuleSet(
        dict(base.rules),
        dict(base.budgets),
        dict(base.quotas),
        dict(base.tenants),
        base.route,
        list(base.inhibit_rules),
        dict(base.receivers),
        list(base.sources),
    )


def _route_receivers(route: RouteSpec) -> list[str]:
    names = [route.receiver] if route.receiver else []
    for child in route.routes:
        names.extend(_route_receivers(child))
    return names


def _check_receivers(rs: RuleSet) -> None:
    if rs.route is None:
        return
    unknown = [n for n in _route_receivers(rs.route) if n not in rs.receivers]
    if unknown:
        where = rs.sources[-1] if rs.sources else "rules"
        raise RuleFileError(
            [
                RuleIssue(
                    where,
                    1,
                    1,
                    "route",
                    f"unknown receiver {unknown[0]!r}",
                    f"define it under receivers: ({sorted(rs.receivers)})",
                )
            ]
        )
