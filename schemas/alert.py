"""The alert: what on-call sees, published on ``spendfuse.alerts``.

An alert is identified by its ``fingerprint`` (rule + scope): it is ``firing`` once and
``resolved`` once, never once per event. Times are event time (the event that caused the
transition), so replaying the same events gives the same alerts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spendfuse.schemas.common import Severity, UtcDatetime

MAX_EVIDENCE_ITEMS = 5
"""Bound on each evidence list: enough to start an investigation, small enough for Slack."""


class TraceContribution(BaseModel):
    """One trace and what it cost inside the alert's window."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(max_length=256)
    cost_usd: float
    steps: int | None = Field(default=None, ge=0, description="the trace's events so far")


class Evidence(BaseModel):
    """The number behind a decision, what it was compared with, and where to look.

    ``top_traces`` (largest cost first) and ``sample_event_ids`` (``cost_event_id`` values of
    events that counted) are optional and bounded, so ``spendfuse explain`` can fetch the events.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float
    threshold: float | None = None
    baseline: float | None = None
    window_s: int | None = None
    window_start: UtcDatetime | None = None
    top_traces: list[TraceContribution] = Field(default_factory=list, max_length=MAX_EVIDENCE_ITEMS)
    sample_event_ids: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=MAX_EVIDENCE_ITEMS
    )


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    alert_id: str = Field(description="Unique per firing: fingerprint + fired_at.")
    fingerprint: str = Field(description="Stable per rule and scope.")
    rule: str
    status: Literal["firing", "resolved"]
    severity: Severity
    tenant_id: str
    use_case_id: str
    summary: str
    evidence: Evidence
    fired_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    actions_taken: list[str] = Field(
        default_factory=list, description="Command ids spendfuse issued for this alert."
    )
    guardrail_held: list[str] = Field(
        default_factory=list,
        description="Actions the risk-tier guardrail held back (alert only), with why.",
    )
    how_to_silence: str | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
