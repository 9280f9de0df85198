"""Rule files: shipped packs load, broken files give located errors with hints, reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.rules.errors import RuleFileError
from spendfuse.rules.loader import DEFAULT_PACK, EXAMPLES_PACK, load_rule_dir, parse_rule_file
from spendfuse.rules.reload import RulesWatcher

BROKEN = Path(__file__).parent / "fixtures" / "broken"


def test_every_shipped_rule_file_loads() -> None:
    """Installed package data, so the packs cannot rot (and do ship)."""
    files = sorted(p.name for p in [*DEFAULT_PACK.iterdir(), *EXAMPLES_PACK.iterdir()])
    assert files == [
        "budgets-demo-fleet.yaml",
        "capacity.yaml",
        "cost.yaml",
        "routing.yaml",
        "spend.yaml",
    ]
    default = load_rule_dir(DEFAULT_PACK)
    merged = load_rule_dir(EXAMPLES_PACK, default)
    assert len(merged.rules) == 24 and merged.budgets and merged.quotas
    assert all(b.owner for b in [*merged.budgets.values(), *merged.quotas.values()])
    assert str(merged.tz("acme")) == "Europe/Berlin" and str(merged.tz("initech")) == "Asia/Tokyo"


def test_rules_check_reports_every_error_with_location_and_hint() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(BROKEN)])
    assert result.exit_code == 1
    lines = [line.replace(str(BROKEN) + "/", "") for line in result.output.splitlines()]
    assert lines[:9] == [
        "bad_syntax.yml:5:1 invalid YAML: expected ',' or ']', but got '<stream end>'",
        "prod.yaml:6:10 rules[0].for: bad duration '5 minutes' (hint: write a whole number and a"
        " unit: 30s, 5m, 1h, 2d, 1w, or 5bd for business days)",
        "prod.yaml:9:65 rules[0].actions[0].mdoe: Extra inputs are not permitted"
        " (hint: did you mean 'mode'?)",
        "prod.yaml:11:50 rules[1].condition.metric: unknown metric 'cost_per_reqest'"
        " (hint: did you mean 'cost_per_request'?)",
        "prod.yaml:11:86 rules[1].condition.value: Input should be greater than 0"
        " (hint: use a number that satisfies the bound (ratios and percents are over 0))",
        "prod.yaml:16:5 budgets[0].owner: Field required (hint: every budget needs an owner:"
        " the person, team or channel told when it burns)",
        "prod.yaml:14:34 tenants[0].time_zone: unknown time zone 'Europe/Berln'"
        " (hint: did you mean 'Europe/Berlin'?)",
        "typos.yaml:4:16 rules[0].condition: unknown type 'thresold' (hint: did you mean"
        " 'threshold'? one of threshold, ratio_to_baseline, detector_score, budget_percent,"
        " anomaly, session_outlier, all, any)",
        "typos.yaml:6:5 rules[0].labls: Extra inputs are not permitted"
        " (hint: did you mean 'labels'?)",
    ]


def test_rules_check_ok_on_the_default_pack() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(DEFAULT_PACK)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 4 file(s), 24 rule(s)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: []", "test.yaml:1:1 version: Field required"),
        ("version: 2", "test.yaml:1:10 version: Input should be 1"),
        ("version: 1\nroute: {receiver: nobody}", "test.yaml:1:1 route: unknown receiver 'nobody'"),
        (
            "version: 1\nrules:\n  - name: a\n    condition: {type: threshold, metric: step_number,"
            " window: 1h, value: 3}\n    severity: low",
            "test.yaml:4:16 rules[0].condition: metric 'step_number' has no window '1h'",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    scope: {matchers: ['x ~ y']}\n"
            "    condition: {type: threshold, metric: calls, value: 3}\n    severity: low",
            "test.yaml:4:23 rules[0].scope.matchers: bad matcher 'x ~ y'",
        ),
    ],
)
def test_single_file_errors(text: str, expected: str) -> None:
    from spendfuse.rules.ruleset import merge_files

    with pytest.raises(RuleFileError) as info:
        merge_files([("test.yaml", parse_rule_file(text, "test.yaml"))])
    assert str(info.value.issues[0]).startswith(expected)


GOOD = """version: 1
rules:
  - name: big_spend
    condition: {type: threshold, metric: spend_usd, window: 1h, value: 10}
    severity: low
"""


def test_reload_swaps_on_change_and_keeps_old_rules_on_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    watcher = RulesWatcher(tmp_path, default_pack=False)
    assert watcher.poll().ruleset is None  # unchanged
    (tmp_path / "r.yaml").write_text(GOOD.replace("big_spend", "huge_spend"))
    result = watcher.poll()
    assert result.ruleset is not None and list(result.ruleset.rules) == ["huge_spend"]
    (tmp_path / "r.yaml").write_text(GOOD.replace("value: 10", "value: ten"))
    bad = watcher.poll()
    assert bad.ruleset is None
    assert "r.yaml:4:72 rules[0].condition.value: Input should be a valid number" in str(
        bad.errors[0]
    )
    assert watcher.poll().errors == []  # reported once, not on every poll
