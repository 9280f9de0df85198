"""Rule files for tests: the default pack with its spend-rate limit (or other rules) tuned."""

from __future__ import annotations

from pathlib import Path

from spendfuse.rules.loader import load_default_pack, parse_rule_file
from spendfuse.rules.ruleset import RuleSet, merge_files


def spend_limit_yaml(
    limit_usd: float = 5.0,
    action: str = "degrade",
    *,
    level: str = "L1",
    mode: str = "enforce",
    expires_in: str = "1h",
) -> str:
    """The default pack's ``spend_rate_limit`` rule with another limit or action."""
    acts = {
        "degrade": f"[{{kind: degrade, level: {level}, target: use_case, mode: {mode}, "
        f"expires_in: {expires_in}}}]",
        "kill_switch": f"[{{kind: kill_switch, target: use_case, mode: {mode}, "
        f"expires_in: {expires_in}}}]",
        "alert": "[{kind: alert}]",
    }[action]
    return f"""version: 1
rules:
  - name: spend_rate_limit
    condition: {{type: threshold, metric: spend_usd, window: 1m, op: ">", value: {limit_usd}}}
    keep_firing_for: 1m
    severity: high
    annotations:
      summary: "Spend on {{use_case_id}}: ${{value:.2f}} in a minute, over ${{threshold:.2f}}"
    actions: {acts}
"""


def with_rules(text: str, default_pack: bool = True) -> RuleSet:
    base = load_default_pack() if default_pack else None
    return merge_files([("test.yaml", parse_rule_file(text, "test.yaml"))], base)


def spend_limit_rules(
    limit_usd: float = 5.0, action: str = "degrade", *, default_pack: bool = True, **kw: str
) -> RuleSet:
    return with_rules(spend_limit_yaml(limit_usd, action, **kw), default_pack)


def write_rules_dir(directory: Path, *texts: str) -> Path:
    """A rules directory (``SPENDFUSE_RULES_DIR``) holding ``texts`` as numbered files."""
    directory.mkdir(parents=True, exist_ok=True)
    for n, text in enumerate(texts):
        (directory / f"{n:02d}-test.yaml").write_text(text)
    return directory


def rules_env(directory: Path, *texts: str, default_pack: bool = True) -> dict[str, str]:
    """Worker settings that run ``texts`` as its rules directory (over the default pack)."""
    env = {"SPENDFUSE_RULES_DIR": str(write_rules_dir(directory, *texts))}
    if not default_pack:
        env["SPENDFUSE_RULES_DEFAULT_PACK"] = "false"
    return env


def fast_watches_yaml(spend_bucket: str = "1m", grace_buckets: int = 5) -> str:
    """The default pack's anomaly watches with one-minute spend buckets and a short warm-up,
    so a test can teach a baseline with a few minutes of events."""
    import yaml

    from spendfuse.rules.loader import DEFAULT_PACK

    doc = yaml.safe_load((DEFAULT_PACK / "spend.yaml").read_text())
    rules = [r for r in doc["rules"] if r["condition"]["type"] == "anomaly"]
    for rule in rules:
        cond = rule["condition"]
        if cond["signal"] == "spend_usd":
            cond["bucket"] = spend_bucket
            rule["for"], rule["keep_firing_for"] = "2m", "3m"
        params = cond["detector"]["params"]
        # a call-by-call watch (``unit_shift``) warms up in calls, the others in buckets
        params["grace_calls" if "grace_calls" in params else "grace_period"] = grace_buckets
    return yaml.safe_dump({"version": 1, "rules": rules}, sort_keys=False)


def temp_rules_env(*texts: str, default_pack: bool = True) -> dict[str, str]:
    """:func:`rules_env` in a fresh temporary directory (for module-level worker settings)."""
    import tempfile

    return rules_env(
        Path(tempfile.mkdtemp(prefix="spendfuse-rules-")), *texts, default_pack=default_pack
    )
