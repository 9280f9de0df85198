"""What the dashboard shows, kept in the worker's memory: pure, bounded, and fed by the worker.

The ingest handler feeds accepted events and the alerts it publishes; an agent on the control
topic feeds every command (so operator-issued ones show too). :meth:`DashboardState.snapshot`
turns that into the JSON the page polls. No Kafka, no Faust and no wall clock here: the caller
passes ``now``, so the same code is unit-tested with fixed times.

Memory is bounded: per use case a ring of spend buckets covering ``horizon_s``; at most
``max_use_cases`` use cases (the least recently active is dropped), ``max_alerts`` alert
fingerprints, ``max_commands`` recent commands and ``max_in_force`` commands in force (expired
ones dropped first, then the oldest), with the versions of ``max_in_force`` lifted keys.

Control records are shown only once their signature verifies (:meth:`add_control_record`, with
the worker's verify key): an unsigned or forged record on the topic never shows as in force.
Commands are ordered per key by their publisher-assigned version, as gateways order them.

The baseline band is a *simple* one until seasonal baselines land: the mean ± 2σ of the use
case's spend rate over the trailing ``band_window_s`` (the current bucket excluded). Budgets are
the YAML budgets and quotas of the running rule set (:mod:`spendfuse.dashboard_budgets`); a use
case's card shows its own daily and monthly budget when one is configured, else the default
from settings. The card's projection extends the spend rate of the last
``projection_window_s``. Showback (spend per cost center, business unit and use case, today and
this month) comes from the hourly rollups the worker publishes.
"""

from __future__ import annotations

import calendar
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from cachetools import LRUCache
from pydantic import ValidationError

from spendfuse.control.signing import Verifier, VerifyOutcome
from spendfuse.dashboard_budgets import BudgetBoard, Showback
from spendfuse.rules.routing import alert_labels
from spendfuse.rules.ruleset import RuleSet
from spendfuse.rules.silences import Silence, silenced_by
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.command import CommandKind, ControlCommand
from spendfuse.schemas.common import format_rfc3339, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.rollup import CostRollup


@lru_cache(maxsize=1024)
def _day_and_month(year: int, month: int, day: int) -> tuple[str, str]:
    """``("2026-11-23", "2026-11")``: once per calendar day, not ``strftime`` twice per event."""
    name = f"{year:04d}-{month:02d}-{day:02d}"
    return name, name[:7]


BAND_LABEL = "trailing-hour mean ± 2σ (simple band; seasonal baselines not wired in yet)"


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    bucket_s: int = 30
    horizon_s: int = 2 * 3600
    band_window_s: int = 3600
    band_sigmas: float = 2.0
    band_min_buckets: int = 8
    projection_window_s: int = 900
    daily_budget_usd: float = 100.0
    monthly_budget_usd: float = 2000.0
    max_use_cases: int = 50
    max_charts: int = 12
    max_alerts: int = 200
    max_commands: int = 50
    max_in_force: int = 10_000

    def __post_init__(self) -> None:
        for name in ("bucket_s", "horizon_s", "band_window_s", "max_use_cases", "max_charts"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(slots=True)
class UseCaseSpend:
    """One use case's recent spend: a bucket ring (bucket index → USD) and calendar totals."""

    tenant_id: str
    risk_tier: str
    buckets: dict[int, float] = field(default_factory=dict)
    newest_bucket: int = 0
    first_bucket: int | None = None
    day: str = ""
    day_usd: float = 0.0
    month: str = ""
    month_usd: float = 0.0
    events: int = 0


class DashboardState:
    def __init__(
        self,
        config: DashboardConfig | None = None,
        verifier: Verifier | None = None,
        rules: Callable[[], RuleSet | None] | None = None,
    ) -> None:
        self.config = config or DashboardConfig()
        self.verifier = verifier
        self.budgets = BudgetBoard(rules or (lambda: None))  # the running rules' budgets
        self.showback = Showback()
        self.outcomes: OrderedDict[str, dict[str, Any]] = OrderedDict()  # use case -> economics
        self.control_refused: dict[str, int] = {}
        self._lifted: LRUCache[str, int] = LRUCache(maxsize=self.config.max_in_force)
        self.use_cases: OrderedDict[str, UseCaseSpend] = OrderedDict()
        self.alerts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.commands: deque[dict[str, Any]] = deque(maxlen=self.config.max_commands)
        self.in_force: dict[str, dict[str, Any]] = {}
        self._labels: dict[str, dict[str, str]] = {}  # fingerprint -> labels silences match
        self._command_ids: set[str] = set()
        self.watermark_ms: int | None = None
        self.events_seen = 0

    # -- feeding -------------------------------------------------------------------------
    def add_event(self, event: CostEvent) -> None:
        """Count one accepted (deduplicated, priced) event by its event time."""
        cfg = self.config
        ts_ms = to_epoch_ms(event.event_time)
        self.events_seen += 1
        self.budgets.add_event(event)
        self.watermark_ms = ts_ms if self.watermark_ms is None else max(self.watermark_ms, ts_ms)
        uc = self.use_cases.get(event.use_case_id)
        if uc is None:
            uc = UseCaseSpend(event.tenant_id, event.risk_tier.value)
            self.use_cases[event.use_case_id] = uc
            while len(self.use_cases) > cfg.max_use_cases:
                self.use_cases.popitem(last=False)
        self.use_cases.move_to_end(event.use_case_id)
        uc.events += 1
        cost = event.cost_usd
        self._add_calendar(uc, event.event_time, cost)
        bucket = ts_ms // (cfg.bucket_s * 1000)
        ring = cfg.horizon_s // cfg.bucket_s + 1
        if bucket <= uc.newest_bucket - ring:
            return  # older than the chart's horizon
        uc.buckets[bucket] = uc.buckets.get(bucket, 0.0) + cost
        uc.first_bucket = bucket if uc.first_bucket is None else min(uc.first_bucket, bucket)
        if bucket > uc.newest_bucket:
            uc.newest_bucket = bucket
            if len(uc.buckets) > ring + ring // 8:
                oldest = bucket - ring
                uc.buckets = {b: v for b, v in uc.buckets.items() if b > oldest}

    @staticmethod
    def _add_calendar(uc: UseCaseSpend, at: datetime, cost: float) -> None:
        day, month = _day_and_month(at.year, at.month, at.day)
        if month > uc.month:
            uc.month, uc.month_usd = month, 0.0
        if month == uc.month:
            uc.month_usd += cost
        if day > uc.day:
            uc.day, uc.day_usd = day, 0.0
        if day == uc.day:
            uc.day_usd += cost

    def set_outcomes(self, use_case: str, view: dict[str, Any]) -> None:
        """A use case's cost per successful outcome and ROI (``finops.outcomes.ledger_view``)."""
        self.outcomes.pop(use_case, None)
        self.outcomes[use_case] = view
        while len(self.outcomes) > self.config.max_use_cases:
            self.outcomes.popitem(last=False)

    def add_rollups(self, rows: Iterable[CostRollup]) -> None:
        """Rollup rows the worker published (full totals per key): the showback view."""
        self.showback.add(rows)

    def add_alert(self, alert: Alert) -> None:
        """Record a firing or resolved alert under its fingerprint (the latest state wins)."""
        entry = alert.model_dump(mode="json")
        self.alerts[alert.fingerprint] = entry
        self.alerts.move_to_end(alert.fingerprint)
        self._labels[alert.fingerprint] = alert_labels(alert)
        while len(self.alerts) > self.config.max_alerts:
            resolved = next(
                (fp for fp, a in self.alerts.items() if a["status"] == "resolved"), None
            )
            dropped = resolved if resolved is not None else next(iter(self.alerts))
            self.alerts.pop(dropped)
            self._labels.pop(dropped, None)

    def add_control_record(
        self, key: bytes | None, value: bytes | None, signature: bytes | None
    ) -> tuple[str, ControlCommand | None]:
        """Show a record from the control topic if its signature verifies; return the outcome
        (``shown``, ``tombstone``, or why it was refused: ``unverified`` without a verify key,
        else the verifier's reason or ``invalid``) and the command shown."""
        command = None
        if value is None:
            return "tombstone", None  # compaction's marker; the signed restore before it lifted
        if self.verifier is None:
            outcome = "unverified"
        else:
            outcome = self.verifier.verify(key or b"", value, signature)
        if outcome == VerifyOutcome.OK:
            try:
                command = ControlCommand.model_validate(orjson.loads(value))
                outcome = "shown" if command.key().encode() == key else "invalid"
            except (orjson.JSONDecodeError, ValidationError):
                outcome = "invalid"
        if outcome != "shown" or command is None:
            self.control_refused[outcome] = self.control_refused.get(outcome, 0) + 1
            return outcome, None
        self.add_command(command)
        return outcome, command

    def add_decided_command(self, command: ControlCommand) -> None:
        """A command the worker just decided (the ingest hook), before its publisher stamped
        it: listed as recent only. Its time and expiry are the rule's event time until the
        signed record comes back on the control feed and replaces it."""
        self._add_recent(command)

    def _add_recent(self, command: ControlCommand) -> dict[str, Any]:
        entry = command.model_dump(mode="json")
        entry["_order"] = command.order()
        if command.command_id in self._command_ids:
            for i, held in enumerate(self.commands):  # the published record replaces the decision
                if held["command_id"] == command.command_id:
                    if command.version is not None:
                        self.commands[i] = entry
                    break
            return entry
        if len(self._command_ids) >= 10 * self.config.max_commands:
            self._command_ids = {c["command_id"] for c in self.commands}
        self._command_ids.add(command.command_id)
        self.commands.append(entry)
        return entry

    def add_command(self, command: ControlCommand) -> None:
        """Record a verified, published command; the newest version per key is in force."""
        entry = self._add_recent(command)
        key = command.key()
        current = self.in_force.get(key)
        newest = current["_order"] if current is not None else self._lifted.get(key, -1)
        if entry["_order"] <= newest:
            return
        if command.kind is CommandKind.RESTORE:
            self.in_force.pop(key, None)
            self._lifted[key] = entry["_order"]
            return
        self.in_force.pop(key, None)
        self.in_force[key] = entry  # re-inserted: the dict's order is oldest first
        if len(self.in_force) > self.config.max_in_force:
            self._evict_in_force()

    def _evict_in_force(self) -> None:
        """Over the cap: drop expired commands first, then the oldest."""
        now = max((e["issued_at"] for e in self.in_force.values()), default="")
        expired = [
            k for k, e in self.in_force.items() if e.get("expires_at") and e["expires_at"] <= now
        ]
        for key in expired:
            self._lifted[key] = self.in_force.pop(key)["_order"]
        while len(self.in_force) > self.config.max_in_force:
            key = next(iter(self.in_force))
            self._lifted[key] = self.in_force.pop(key)["_order"]

    def in_force_on(self, target_key: str) -> list[dict[str, Any]]:
        """The commands in force on a target, every scope (what a lift must restore)."""
        return [
            e for k, e in self.in_force.items() if k == target_key or k.startswith(target_key + "|")
        ]

    # -- reading -------------------------------------------------------------------------
    def chart_end(self, now: datetime) -> int:
        """The chart's right edge (epoch ms): ``now``, unless every event is older than the
        horizon (a replay of past data), then the newest event time."""
        now_ms = to_epoch_ms(now)
        wm = self.watermark_ms
        if wm is not None and wm < now_ms - self.config.horizon_s * 1000:
            return wm
        return now_ms

    def snapshot(self, now: datetime, silences: Sequence[Silence] = ()) -> dict[str, Any]:
        """Everything the page shows, as JSON-able data; expiry applied against ``now``.

        ``silences`` are the operators' silences (``spendfuse silence add``, or the page's
        token-protected write); an alert they match shows as silenced.
        """
        end_ms = self.chart_end(now)
        ranked = self.ranked(end_ms)
        charts = [
            self._use_case_view(name, uc, end_ms) for name, uc in ranked[: self.config.max_charts]
        ]
        active, recent = self._alert_views(now, silences)
        return {
            "generated_at": format_rfc3339(now),
            "chart_end": _iso_ms(end_ms),
            "bucket_s": self.config.bucket_s,
            "band": BAND_LABEL,
            "budget_source": (
                "the YAML budgets and quotas of the running rules; a use case with none of its "
                "own shows the default (SPENDFUSE_DASHBOARD__*_BUDGET_USD)"
            ),
            "budgets": self.budgets.view(),
            "showback": self.showback.view(),
            "outcomes": [{"use_case_id": uc, **view} for uc, view in self.outcomes.items()],
            "events_seen": self.events_seen,
            "use_cases_tracked": len(self.use_cases),
            "use_cases": charts,
            "alerts_active": active,
            "alerts_recent": recent,
            "commands_in_force": self._in_force_views(now),
            "commands_recent": [_public(c) for c in list(reversed(self.commands))[:20]],
            "control_records_refused": dict(self.control_refused),
        }

    def ranked(self, end_ms: int) -> list[tuple[str, UseCaseSpend]]:
        """Use cases in chart order: active within the horizon first, alerting ones first among
        them, then by spend today (a stale use case with an old alert comes after)."""
        alerting = {a["use_case_id"] for a in self.alerts.values() if a["status"] == "firing"}
        horizon_start = (end_ms - self.config.horizon_s * 1000) // (self.config.bucket_s * 1000)

        def key(item: tuple[str, UseCaseSpend]) -> tuple[bool, bool, float]:
            name, uc = item
            return uc.newest_bucket < horizon_start, name not in alerting, -uc.day_usd

        return sorted(self.use_cases.items(), key=key)

    def _use_case_view(self, name: str, uc: UseCaseSpend, end_ms: int) -> dict[str, Any]:
        cfg = self.config
        times, rates, lower, upper = self.series(uc, end_ms)
        end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
        n = max(1, cfg.projection_window_s // cfg.bucket_s)
        recent = rates[-n - 1 : -1]  # complete buckets only: the current one is partial
        usd_per_s = sum(r for r in recent if r is not None) / 60 / max(len(recent), 1)
        incidents = [
            {"fired_at": a["fired_at"], "resolved_at": a.get("resolved_at")}
            for a in self.alerts.values()
            if a["use_case_id"] == name
        ]
        return {
            "use_case_id": name,
            "tenant_id": uc.tenant_id,
            "risk_tier": uc.risk_tier,
            "events": uc.events,
            "t": times,
            "rate_usd_per_min": rates,
            "band_lower": lower,
            "band_upper": upper,
            "incidents": incidents,
            "budget_day": self._card_budget(
                uc, name, "day", uc.day_usd, cfg.daily_budget_usd, usd_per_s, end
            ),
            "budget_month": self._card_budget(
                uc, name, "month", uc.month_usd, cfg.monthly_budget_usd, usd_per_s, end
            ),
            "outcomes": self.outcomes.get(name),
        }

    def _card_budget(
        self,
        uc: UseCaseSpend,
        name: str,
        period: str,
        used: float,
        default: float,
        usd_per_s: float,
        end: datetime,
    ) -> dict[str, Any]:
        """The use case's own YAML budget for ``period`` if it has one, else the default."""
        own = self.budgets.for_use_case(uc.tenant_id, name, period)
        period_end = _end_of_day(end) if period == "day" else _end_of_month(end)
        if own is None:
            out = project_budget(used, default, usd_per_s, end, period_end)
            out["source"] = "default"
            return out
        out = project_budget(
            own["spent_usd"], own["limit_usd"], usd_per_s, end, own["period_end"] or period_end
        )
        out["source"] = own["name"]
        return out

    def series(
        self, uc: UseCaseSpend, end_ms: int
    ) -> tuple[list[int], list[float | None], list[float | None], list[float | None]]:
        """Spend rate ($/min) per bucket up to ``end_ms`` and its band; None before first seen."""
        cfg = self.config
        last = end_ms // (cfg.bucket_s * 1000)
        first = last - cfg.horizon_s // cfg.bucket_s
        per_min = 60 / cfg.bucket_s
        window = cfg.band_window_s // cfg.bucket_s
        seen_from = uc.first_bucket if uc.first_bucket is not None else last + 1
        times, rates, lower, upper = [], [], [], []
        history: deque[float] = deque()
        total = total_sq = 0.0
        for b in range(first - window, last + 1):
            rate = uc.buckets.get(b, 0.0) * per_min if b >= seen_from else None
            if b >= first:
                times.append(b * cfg.bucket_s)
                rates.append(None if rate is None else round(rate, 6))
                lo, hi = _band(len(history), total, total_sq, cfg)
                lower.append(lo)
                upper.append(hi)
            if rate is not None:
                history.append(rate)
                total += rate
                total_sq += rate * rate
                if len(history) > window:
                    old = history.popleft()
                    total -= old
                    total_sq -= old * old
        return times, rates, lower, upper

    def _alert_views(
        self, now: datetime, silences: Sequence[Silence]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        active, recent = [], []
        for fp, alert in reversed(self.alerts.items()):
            silence = silenced_by(self._labels.get(fp, {}), silences, now)
            view = dict(alert, silenced=silence is not None)
            if silence is not None:
                view["silence"] = {
                    "id": silence.id,
                    "until": format_rfc3339(silence.ends_at),
                    "author": silence.created_by,
                    "comment": silence.comment,
                    "matchers": silence.matchers,
                }
            (active if alert["status"] == "firing" else recent).append(view)
        return active, recent[:10]

    def _in_force_views(self, now: datetime) -> list[dict[str, Any]]:
        out = []
        for key, cmd in sorted(self.in_force.items()):
            if cmd["kind"] == CommandKind.RESTORE.value:
                continue
            expires = cmd.get("expires_at")
            if expires and datetime.fromisoformat(expires) <= now:
                continue
            out.append({"key": key, **_public(cmd)})
        return out


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """A command entry as the page gets it (without the internal ordering field)."""
    return {k: v for k, v in entry.items() if k != "_order"}


def _band(
    n: int, total: float, total_sq: float, cfg: DashboardConfig
) -> tuple[float | None, float | None]:
    if n < cfg.band_min_buckets:
        return None, None
    mean = total / n
    sigma = math.sqrt(max(total_sq / n - mean * mean, 0.0))
    return round(max(mean - cfg.band_sigmas * sigma, 0.0), 6), round(
        mean + cfg.band_sigmas * sigma, 6
    )


def project_budget(
    used_usd: float, budget_usd: float, usd_per_s: float, now: datetime, period_end: datetime
) -> dict[str, Any]:
    """Budget used and, at the current rate, when it runs out (``None``: not this period)."""
    out: dict[str, Any] = {
        "used_usd": round(used_usd, 4),
        "budget_usd": budget_usd,
        "used_pct": round(100 * used_usd / budget_usd, 2) if budget_usd > 0 else None,
        "exhausted_at": None,
        "status": "ok",
    }
    if budget_usd <= 0:
        return out
    if used_usd >= budget_usd:
        out.update(status="exhausted", exhausted_at=format_rfc3339(now))
    elif usd_per_s > 0:
        at = now + timedelta(seconds=(budget_usd - used_usd) / usd_per_s)
        if at < period_end:
            out.update(status="projected", exhausted_at=format_rfc3339(at))
    return out


def _iso_ms(ms: int) -> str:
    return format_rfc3339(datetime.fromtimestamp(ms / 1000, tz=UTC))


def _end_of_day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _end_of_month(t: datetime) -> datetime:
    days = calendar.monthrange(t.year, t.month)[1]
    return t.replace(day=days, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
