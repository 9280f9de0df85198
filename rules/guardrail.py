"""The risk-tier guardrail, enforced in code.

Budget or cost pressure must never automatically degrade or kill medium, high or critical risk
routes (that would trade safety for money); for those it alerts only, and the alert says what was
held back. Only rules marked as risk protection (L4) may act on those tiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from spendfuse.schemas.common import RiskTier

PROTECTED_TIERS = frozenset({RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL})


@dataclass(frozen=True, slots=True)
class GuardrailVerdict:
    allowed: bool
    reason: str = ""


def check_action(risk_tier: RiskTier, *, risk_protection: bool, action: str) -> GuardrailVerdict:
    """May a rule act automatically on a use case of ``risk_tier``?

    ``risk_protection`` is true only for rules explicitly marked as L4 risk protection.
    """
    if risk_tier not in PROTECTED_TIERS or risk_protection:
        return GuardrailVerdict(True)
    return GuardrailVerdict(
        False,
        f"{action} held back by the risk-tier guardrail: the use case is {risk_tier.value}-risk, "
        "and cost or budget pressure never degrades or stops medium/high/critical-risk routes "
        "automatically; review it by hand",
    )
