"""The one alert lifecycle: pending -> firing -> resolved, for every rule kind.

Rule kinds (conditions, anomaly watches, budgets) only say, at a point in event time, whether
their condition holds for one group (a :class:`~spendfuse.rules.conditions.Verdict`). This module
alone decides what that means over time, with the state of one rule instance (one rule, one
group) as a plain dict:

* ``pending_ms``: the condition holds but its ``for`` has not elapsed yet;
* ``fired_ms``: firing since then; ``held_ms``: the last time the condition held while firing;
* ``issued``: the command targets the firing issued, so that clearing restores exactly those;
* ``refreshed_ms``: when those commands were last (re)issued, so that a long incident re-issues
  them before they expire instead of letting enforcement lapse silently (the repeat).

A firing resolves once the condition has not held for ``keep_firing_for`` (one blip under the
threshold is no recovery). The ``when`` gate only holds back *firing*; clearing is never gated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    """What one verdict did to a rule instance."""

    NONE = "none"
    FIRE = "fire"
    RESOLVE = "resolve"
    REFRESH = "refresh"  # still firing, and its commands are due to be re-issued


@dataclass(frozen=True, slots=True)
class Timing:
    """A rule's timing, in milliseconds of event time."""

    for_ms: int = 0
    keep_firing_for_ms: int = 0
    refresh_ms: int = 0  # 0: commands are never re-issued while firing
    for_elapsed: Callable[[int, int], bool] | None = None  # business-day ``for`` (pending, now)


def step(
    state: dict[str, Any], holds: bool, now_ms: int, timing: Timing, *, gate_open: bool = True
) -> Step:
    """Advance one rule instance by one verdict; mutates ``state`` (plain data)."""
    if not holds:
        state.pop("pending_ms", None)
        if "fired_ms" not in state:
            return Step.NONE
        held_ms = state.get("held_ms", state["fired_ms"])
        if now_ms - held_ms < timing.keep_firing_for_ms:
            return Step.NONE
        return Step.RESOLVE
    if "fired_ms" in state:
        state["held_ms"] = max(state.get("held_ms", now_ms), now_ms)
        last = state.get("refreshed_ms", state["fired_ms"])
        if timing.refresh_ms and state.get("issued") and now_ms - last >= timing.refresh_ms:
            state["refreshed_ms"] = now_ms
            return Step.REFRESH
        return Step.NONE
    if not gate_open:
        return Step.NONE
    pending = state.setdefault("pending_ms", now_ms)
    if timing.for_elapsed is not None:
        elapsed = timing.for_elapsed(pending, now_ms)
    else:
        elapsed = now_ms - pending >= timing.for_ms
    if not elapsed:
        return Step.NONE
    state.pop("pending_ms", None)
    state["fired_ms"] = state["held_ms"] = now_ms
    return Step.FIRE


def fired(state: dict[str, Any], issued: list[list[str]], mode: str) -> None:
    """Record what a firing issued (targets as ``[type, id]``), for refresh and restore."""
    state["issued"] = issued
    state["mode"] = mode
    state["refreshed_ms"] = state["fired_ms"]


def resolved(state: dict[str, Any]) -> tuple[int, list[list[str]], str]:
    """Clear a resolved instance; returns when it fired, what it issued and in which mode."""
    fired_ms = state.pop("fired_ms")
    issued = state.pop("issued", [])
    mode = state.pop("mode", "enforce")
    for key in ("held_ms", "refreshed_ms", "pending_ms"):
        state.pop(key, None)
    return fired_ms, issued, mode
