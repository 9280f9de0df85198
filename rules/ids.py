"""Deterministic ids for alerts and commands.

A decision's id depends only on what was decided and the event time it was decided at, so a
worker that restarts and re-processes the same events re-issues the *same* ids, and consumers
(the Slack notifier, gateways) drop the repeat. This is spendfuse's exactly-once for decisions.
"""

from __future__ import annotations

import hashlib


def stable_id(*parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=12)
    return digest.hexdigest()


def fingerprint(rule: str, tenant_id: str, use_case_id: str) -> str:
    """Stable per rule and scope: the identity of an incident."""
    return f"{rule}/{tenant_id}/{use_case_id}"
