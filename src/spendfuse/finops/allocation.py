"""Allocate shared costs (a GPU pool, a vector database, the platform, idle capacity) by YAML rules.

A shared cost is a rollup row that a pool's ``match`` selects, or any row whose
``allocation_method`` is ``shared_pool``. Within each report period, each pool's cost goes to
recipients by one of three methods:

- ``proportional``: to the ``consumers``' groups (``by``) in proportion to a usage ``driver``
  (``gpu_seconds``, ``api_calls``, tokens, ``events`` or ``cost_usd``);
- ``even``: in equal parts to the consumers' groups that had events in the period;
- ``fixed``: fixed ``shares`` to named owners (``to``), e.g. reserved capacity to its owner.

Whatever a rule does not place (no usage of the driver in the period, shares under 100 %, a
shared row no pool matches) is an ``unallocated`` row of its own, never spread or dropped: the
report's total always equals the rollups' total. Example::

    version: 1
    pools:
      - name: gpu_pool
        match: {component: gpu, allocation_method: shared_pool}
        method: proportional
        driver: gpu_seconds
        consumers: {component: [model_call, gpu]}
      - name: platform
        match: {use_case_id: platform-baseline}
        method: even
      - name: idle_reserved_gpu
        match: {model_or_service: reserved-gpu-idle}
        method: fixed
        shares: [{to: {business_unit: contact_center, cost_center: cc_4102}, share: 0.7}]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spendfuse.finops.yamlfile import load_yaml_model
from spendfuse.schemas.rollup import ROLLUP_DIMENSIONS

Dimension = Literal[
    "tenant_id",
    "business_unit",
    "cost_center",
    "use_case_id",
    "environment",
    "risk_tier",
    "component",
    "provider",
    "model_or_service",
    "allocation_method",
]
Driver = Literal[
    "cost_usd",
    "events",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "api_calls",
    "gpu_seconds",
]
DEFAULT_BY: tuple[str, ...] = (
    "tenant_id",
    "business_unit",
    "cost_center",
    "use_case_id",
    "environment",
)
"""Recipient granularity by default: the use case and everything it is charged to."""
Matcher = dict[Dimension, str | list[str] | None]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


def matches(matcher: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """True when the row has, for every key of ``matcher``, that value (or one of a list)."""
    for dim, want in matcher.items():
        got = row.get(dim)
        if isinstance(want, list):
            if got not in want:
                return False
        elif got != want:
            return False
    return True


class FixedShare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: dict[Dimension, str] = Field(min_length=1, description="The owner's attribution.")
    share: Share


class Pool(BaseModel):
    """One shared cost and how it is allocated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    match: Matcher = Field(min_length=1, description="Which rollup rows are this pool's cost.")
    method: Literal["proportional", "even", "fixed"]
    driver: Driver | None = None
    consumers: Matcher = Field(
        default_factory=dict, description="Direct rows whose usage counts (default: all)."
    )
    by: tuple[Dimension, ...] = DEFAULT_BY
    shares: list[FixedShare] = Field(default_factory=list)

    @model_validator(mode="after")
    def _method_fields(self) -> Pool:
        if self.method == "proportional" and self.driver is None:
            raise ValueError(f"pool {self.name!r}: method proportional needs a driver")
        if self.method != "proportional" and self.driver is not None:
            raise ValueError(f"pool {self.name!r}: driver is only for method proportional")
        if self.method == "fixed":
            if not self.shares:
                raise ValueError(f"pool {self.name!r}: method fixed needs shares")
            total = sum(s.share for s in self.shares)
            if total > 1 + 1e-9:
                raise ValueError(
                    f"pool {self.name!r}: shares add up to {total:g}, over 1; the part no "
                    "share covers is shown as unallocated, so shares may add up to less"
                )
        elif self.shares:
            raise ValueError(f"pool {self.name!r}: shares are only for method fixed")
        return self


class AllocationRules(BaseModel):
    """An allocation rules file (format version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    pools: list[Pool] = Field(default_factory=list)

    @field_validator("pools")
    @classmethod
    def _unique_names(cls, pools: list[Pool]) -> list[Pool]:
        names = [p.name for p in pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(dupes)}")
        return pools


def load_allocation_rules(path: Path) -> AllocationRules:
    """Read and validate an allocation rules file (``ConfigFileError`` with located problems)."""
    return load_yaml_model(path, AllocationRules)


@dataclass(slots=True)
class AllocatedRow:
    """A share of a pool's cost for one recipient, or the pool's unallocated remainder."""

    dims: dict[str, Any]
    cost_usd: float
    pool: str | None
    cost_type: Literal["allocated", "unallocated"]
    method: str
    driver: str | None = None
    share: float | None = None
    reason: str = ""
    events: int = field(default=0)


def _driver_value(row: Mapping[str, Any], driver: str) -> float:
    if driver == "total_tokens":
        return float(row["input_tokens"] + row["output_tokens"])
    return float(row[driver])


def split_shared(
    rows: Iterable[Mapping[str, Any]], rules: AllocationRules | None
) -> tuple[list[Mapping[str, Any]], dict[str | None, list[Mapping[str, Any]]]]:
    """Direct rows, and shared rows by pool name (``None``: shared, matched by no pool)."""
    pools = rules.pools if rules else []
    direct: list[Mapping[str, Any]] = []
    shared: dict[str | None, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        pool = next((p for p in pools if matches(p.match, row)), None)
        if pool is not None:
            shared[pool.name].append(row)
        elif row.get("allocation_method") == "shared_pool":
            shared[None].append(row)
        else:
            direct.append(row)
    return direct, shared


def allocate_period(
    rows: Iterable[Mapping[str, Any]], rules: AllocationRules | None
) -> tuple[list[Mapping[str, Any]], list[AllocatedRow]]:
    """Allocate one period's rows: the direct rows as they are, and the shared costs as
    allocated and unallocated rows whose costs add up to the shared rows' exactly."""
    direct, shared = split_shared(rows, rules)
    out: list[AllocatedRow] = []
    by_name = {p.name: p for p in rules.pools} if rules else {}
    for name, pool_rows in shared.items():
        cost = sum(r["cost_usd"] for r in pool_rows)
        events = sum(r["events"] for r in pool_rows)
        if name is None:
            dims = _common_dims(pool_rows)
            reason = "shared cost (allocation_method shared_pool) that no allocation rule matches"
            out.append(
                AllocatedRow(dims, cost, None, "unallocated", "none", reason=reason, events=events)
            )
            continue
        common = _common_dims(pool_rows)
        out.extend(_allocate_pool(by_name[name], cost, events, direct, common))
    return direct, out


def _common_dims(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The dimensions on which every row agrees (the others are left empty)."""
    first = rows[0]
    return {d: first[d] for d in ROLLUP_DIMENSIONS if all(r[d] == first[d] for r in rows)}


def _allocate_pool(
    pool: Pool,
    cost: float,
    events: int,
    direct: list[Mapping[str, Any]],
    common: dict[str, Any],
) -> list[AllocatedRow]:
    """The pool's allocated rows, then its unallocated remainder (with the dimensions all the
    pool's own rows share) when one is left."""
    if pool.method == "fixed":
        out = [
            AllocatedRow(dict(s.to), cost * s.share, pool.name, "allocated", "fixed", share=s.share)
            for s in pool.shares
        ]
        reason = "no owner is given a share of this part"
    else:
        out = _weighted(pool, cost, direct)
        what = f"{pool.driver} usage" if pool.method == "proportional" else "events"
        reason = f"no consumer had {what} in the period"
    remainder = cost - sum(r.cost_usd for r in out)
    if out and abs(remainder) < 1e-9 * max(1.0, abs(cost)):
        out[-1].cost_usd += remainder  # float rounding: the last share takes it
    elif remainder or not out:
        unplaced = 1.0 - sum(r.share or 0.0 for r in out)
        out.append(
            AllocatedRow(
                common,
                remainder,
                pool.name,
                "unallocated",
                pool.method,
                pool.driver,
                unplaced,
                reason,
                events,
            )
        )
    return out


def _weighted(pool: Pool, cost: float, direct: list[Mapping[str, Any]]) -> list[AllocatedRow]:
    """Shares of ``cost`` per consumer group (``pool.by``): by driver, or even over the groups
    that had events. Empty when no consumer weighs anything."""
    weights: dict[tuple[Any, ...], float] = {}
    for row in direct:
        if not matches(pool.consumers, row):
            continue
        key = tuple(row[d] for d in pool.by)
        if pool.driver is None:
            if row["events"] > 0:
                weights[key] = 1.0
        else:
            weights[key] = weights.get(key, 0.0) + _driver_value(row, pool.driver)
    total = sum(weights.values())
    if total <= 0:
        return []
    return [
        AllocatedRow(
            dict(zip(pool.by, key, strict=True)),
            cost * weight / total,
            pool.name,
            "allocated",
            pool.method,
            pool.driver,
            weight / total,
        )
        for key, weight in sorted(weights.items(), key=lambda kv: _sortable(kv[0]))
        if weight > 0
    ]


def _sortable(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in key)
