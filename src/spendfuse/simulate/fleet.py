"""The simulated fleet: use cases with their traffic shape, token profile and risk tier.

Numbers are chosen to look like a mid-size company's AI estate: a few thousand agent tasks a day
per use case, diurnal traffic peaking in the afternoon, quiet weekends, lognormal token counts,
agents taking several model/tool steps per task, and provider-side prompt caching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UseCaseProfile:
    use_case_id: str
    tenant_id: str
    risk_tier: str
    environment: str = "prod"
    business_unit: str = "product"
    cost_center: str = "cc-100"
    provider: str = "openai"
    model: str = "gpt-4o-mini"
    expensive_model: str = "gpt-4o"
    tasks_per_minute: float = 4.0  # at the daily peak, on a weekday
    weekend_factor: float = 0.4
    steps_per_task: tuple[int, int] = (1, 3)  # model-call steps, inclusive range
    tool_call_prob: float = 0.3
    retry_prob: float = 0.02  # transient provider errors retried by the client
    input_tokens_median: float = 1200.0
    output_tokens_median: float = 250.0
    token_sigma: float = 0.45
    cache_hit_rate: float = 0.35
    tool: str = "search_api"
    tool_cost_usd: float = 0.002
    outcome_rate: float = 0.6  # share of tasks that resolve a business case
    route_policy_version: str = "rp-7"
    diurnal_floor: float = 0.12  # night-time load as a share of the peak (1.0: flat traffic)
    history_start: datetime | None = None  # a new use case: no traffic before this instant

    @property
    def events_per_task(self) -> float:
        """Mean cost events one task emits (model calls, their tool calls and retries)."""
        lo, hi = self.steps_per_task
        return (lo + hi) / 2 * (1.0 + self.tool_call_prob)


@dataclass(frozen=True, slots=True)
class Fleet:
    use_cases: tuple[UseCaseProfile, ...] = field(default_factory=tuple)


def default_fleet() -> Fleet:
    """Six use cases over three tenants and every risk tier."""
    return Fleet(
        (
            UseCaseProfile("support-bot", "acme", "low", tasks_per_minute=6.0),
            UseCaseProfile(
                "research-agent",
                "acme",
                "low",
                steps_per_task=(3, 6),
                tool_call_prob=0.6,
                tasks_per_minute=1.5,
                input_tokens_median=2500,
            ),
            UseCaseProfile(
                "doc-summarizer",
                "globex",
                "low",
                model="gpt-4o-mini",
                tasks_per_minute=3.0,
                input_tokens_median=4000,
                output_tokens_median=400,
                cache_hit_rate=0.5,
            ),
            UseCaseProfile(
                "claims-triage",
                "globex",
                "high",
                model="gpt-4o",
                tasks_per_minute=2.0,
                steps_per_task=(2, 4),
            ),
            UseCaseProfile(
                "kyc-review",
                "initech",
                "critical",
                model="gpt-4o",
                tasks_per_minute=0.8,
                steps_per_task=(2, 3),
            ),
            UseCaseProfile(
                "sandbox-playground",
                "initech",
                "medium",
                environment="sandbox",
                tasks_per_minute=0.6,
                weekend_factor=0.8,
            ),
        )
    )
