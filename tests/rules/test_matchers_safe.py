"""Label matchers are safe on any input: literal scope values, linear-time regexes, and an
invalid regex caught when the rule file is loaded, at its file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.rules.errors import RuleFileError
from spendfuse.rules.loader import parse_rule_file
from spendfuse.rules.matchers import any_of, parse_matcher
from spendfuse.rules.ruleset import merge_files
from tests.rules.support import ruleset, run
from tests.support.events import make_event

SCOPED = """version: 1
rules:
  - name: paren_bot
    scope: {use_case_id: "bot(v2"}
    condition: {type: threshold, metric: event_cost_usd, window: event, value: 1}
    severity: low
"""


def test_a_scope_value_is_a_literal_not_a_regex() -> None:
    rs = ruleset(SCOPED, default_pack=False)
    fired = run(
        [
            make_event("bot(v2", cost=2.0),
            make_event("bot(v2x", cost=2.0),
            make_event("botv2", cost=2.0),
        ],
        rs,
    ).of("paren_bot")
    assert [a.use_case_id for a in fired.alerts if a.status == "firing"] == ["bot(v2"]


def test_rules_check_accepts_a_scope_value_with_regex_characters(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(SCOPED)
    result = CliRunner().invoke(main, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 1 file(s), 1 rule(s)")


def test_any_of_escapes_every_value() -> None:
    m = any_of("tool", ["a.b", "c|d", "e*"])
    assert m.matches({"tool": "a.b"}) and m.matches({"tool": "c|d"}) and m.matches({"tool": "e*"})
    assert not m.matches({"tool": "axb"}) and not m.matches({"tool": "c"})
    assert not m.matches({"tool": "eee"})


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    """With a backtracking engine ``(a|aa)+`` on this value would take longer than the
    universe's age (0.4 s at 31 characters, x1.6 per character); RE2 answers at once (the
    suite's timeout is the bound)."""
    matcher = parse_matcher('model=~"(a|aa)+"')
    assert not matcher.matches({"model": "a" * 5_000 + "b"})
    assert matcher.matches({"model": "a" * 5_000})


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)b", "a(", "[z-a]"])
def test_an_invalid_regex_is_a_load_error_at_its_location(pattern: str) -> None:
    text = (
        "version: 1\nrules:\n  - name: a\n"
        f"    scope: {{matchers: ['model=~\"{pattern}\"']}}\n"
        "    condition: {type: threshold, metric: calls, value: 3}\n    severity: low\n"
    )
    with pytest.raises(RuleFileError) as info:
        merge_files([("test.yaml", parse_rule_file(text, "test.yaml"))])
    issue = str(info.value.issues[0])
    assert issue.startswith("test.yaml:4:23 rules[0].scope.matchers: bad regex in matcher"), issue
    assert "RE2" in issue
