"""Property-based tests of the rule loader: a valid rule file, or every problem located.

Whatever the text, :func:`parse_rule_file` returns a :class:`RuleFile` or raises
:class:`RuleFileError` whose errors each carry a file, a line and column from 1, and a message;
never any other exception, and never unbounded time or memory (alias bombs, deep nesting and huge
files are refused before anything walks them).
"""

from __future__ import annotations

import copy
import math
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spendfuse.rules.errors import RuleFileError
from spendfuse.rules.loader import (
    DEFAULT_PACK,
    MAX_NESTING,
    MAX_NODES,
    MAX_RULE_FILE_BYTES,
    load_rule_dir,
    parse_rule_file,
)
from spendfuse.rules.model import RuleFile

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PACK_FUZZ = settings(FUZZ, max_examples=120)  # each example reads a whole pack file (~25 ms)
PACK_FILES = sorted(DEFAULT_PACK.glob("*.yaml"))
PACK_TEXTS = {p.name: p.read_text() for p in PACK_FILES}
PACK_DATA = {name: yaml.safe_load(text) for name, text in PACK_TEXTS.items()}
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, when built with it: faster


def dump(data: Any, **options: Any) -> str:
    return yaml.dump(data, Dumper=DUMPER, allow_unicode=True, **options)


KEYS = [
    "version",
    "rules",
    "budgets",
    "quotas",
    "tenants",
    "route",
    "routes",
    "inhibit_rules",
    "receivers",
    "name",
    "condition",
    "conditions",
    "type",
    "kind",
    "actions",
    "severity",
    "scope",
    "when",
    "value",
    "op",
    "metric",
    "window",
    "matchers",
    "receiver",
    "slack",
    "channel",
    "owner",
    "tenant_id",
    "period",
    "limit_usd",
    "thresholds",
    "labels",
    "annotations",
    "level",
    "expires_in",
    "group_by",
    "equal",
]


def parse_or_refusal(text: str) -> RuleFile | None:
    """Parse ``text``; a refusal must locate and describe every problem. None if refused."""
    try:
        parsed = parse_rule_file(text, "fuzz.yaml")
    except RuleFileError as exc:
        check_refusal(exc)
        return None
    assert isinstance(parsed, RuleFile)
    return parsed


def check_refusal(exc: RuleFileError) -> None:
    assert exc.issues
    for problem in exc.issues:
        assert problem.file == "fuzz.yaml"
        assert problem.line >= 1 and problem.column >= 1, problem
        assert problem.message.strip(), problem
        assert str(problem).startswith(f"fuzz.yaml:{problem.line}:{problem.column} ")


def refusal(text: str, max_seconds: float = 5.0, max_mb: float | None = None) -> RuleFileError:
    """The error ``text`` is refused with, within a time (and, if given, memory) budget. The
    budgets are loose (shared CI machines), but an unguarded bomb takes hours and gigabytes."""
    started = time.perf_counter()
    with pytest.raises(RuleFileError) as info:
        parse_rule_file(text, "fuzz.yaml")
    elapsed = time.perf_counter() - started
    assert elapsed < max_seconds, f"took {elapsed:.2f}s"
    if max_mb is not None:
        tracemalloc.start()
        try:
            with pytest.raises(RuleFileError):
                parse_rule_file(text, "fuzz.yaml")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < max_mb * 1e6, f"peaked at {peak / 1e6:.0f} MB"
    check_refusal(info.value)
    return info.value


# -- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1m",
            "1h",
            "24h",
            "7d",
            "L1",
            "L4",
            "alert",
            "degrade",
            "kill_switch",
            "threshold",
            "all",
            "spend_usd",
            'severity=~"high"',
            ">",
            ">=",
            "low",
        ]
    ),
)
keys = st.sampled_from(KEYS) | st.text(max_size=8)
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*path, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def mutated_pack_files(draw: st.DrawFn) -> str:
    """A default pack file with a few keys deleted, values retyped, unknown keys inserted."""
    data = copy.deepcopy(PACK_DATA[draw(st.sampled_from(sorted(PACK_DATA)))])
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        value = parent[last]
        action = draw(st.sampled_from(["delete", "retype", "replace", "unknown_key", "dup"]))
        if action == "delete":
            del parent[last]
        elif action == "retype":
            parent[last] = draw(
                st.sampled_from(
                    [str(value), [value], {"value": value}, None, 0, -1, math.nan, math.inf, True]
                )
            )
        elif action == "replace":
            parent[last] = draw(structures)
        elif action == "unknown_key" and isinstance(value, dict):
            value[draw(keys)] = draw(scalars)
        elif action == "dup" and isinstance(parent, list):
            parent.append(value)  # e.g. two rules of the same name
    return dump(data, sort_keys=False)


@st.composite
def edited_pack_texts(draw: st.DrawFn) -> str:
    """A default pack file's text with characters cut, inserted or swapped, as an editor might."""
    text = PACK_TEXTS[draw(st.sampled_from(sorted(PACK_TEXTS)))]
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 20))
        insert = draw(
            st.sampled_from(
                [
                    "",
                    ":",
                    "- ",
                    "\n",
                    "  ",
                    "\t",
                    "&a ",
                    "*a",
                    "{",
                    "]",
                    "'",
                    '"',
                    "!!python/object ",
                    "#",
                    "~",
                    ".nan",
                    "1e999",
                ]
            )
            | st.text(max_size=3)
        )
        text = text[:at] + insert + text[at + cut :]
    return text


# -- properties ---------------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=400))
@example("")
@example("\x00")
@example("\ud800")
@example("version: 1\n---\nversion: 1")
@example("version: !!python/object/apply:os.system [echo]")
@example("version: 1\nrules: !!timestamp nope")
@example("version: 1\nrules: !!int x")
@example("version: 1\nwhen: 2026-13-45")
@example("version: 1\n? [a, b]\n: 1")
@example("version: 1\n1: 2")
@example("version: " + "9" * 5000)
def test_arbitrary_text_is_parsed_or_refused_cleanly(text: str) -> None:
    parse_or_refusal(text)


@FUZZ
@given(structures)
def test_arbitrary_yaml_structures_are_parsed_or_refused_cleanly(data: Any) -> None:
    parse_or_refusal(dump(data))


@FUZZ
@given(st.dictionaries(keys, structures, max_size=5))
def test_arbitrary_sections_of_a_version_1_file_are_parsed_or_refused_cleanly(
    sections: dict[str, Any],
) -> None:
    parse_or_refusal(dump({"version": 1, **sections}))


@PACK_FUZZ
@given(mutated_pack_files())
def test_mutated_default_pack_files_are_parsed_or_refused_cleanly(text: str) -> None:
    parse_or_refusal(text)


@PACK_FUZZ
@given(edited_pack_texts())
def test_edited_default_pack_texts_are_parsed_or_refused_cleanly(text: str) -> None:
    parse_or_refusal(text)


@pytest.mark.parametrize("path", PACK_FILES, ids=lambda p: p.name)
def test_the_default_pack_parses(path: Path) -> None:
    assert parse_or_refusal(path.read_text()) is not None


# -- hostile files ------------------------------------------------------------------------------


def _laughs(levels: int, section: str = "rules") -> str:
    """The billion laughs: each anchor is a list of nine aliases of the one before."""
    lines = ["version: 1", 'x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]")
    lines.append(f"{section}: *x{levels - 1}")
    return "\n".join(lines)


def _route_bomb(levels: int, leaf: str = "{receiver: x}") -> str:
    """Nested routes, each with nine aliases of the one below: valid, but exponentially large
    once expanded, and validation would walk every copy."""
    body = f"&r0 {leaf}"
    for i in range(1, levels):
        body = f"&r{i} {{receiver: x, routes: [{body}" + f", *r{i - 1}" * 8 + "]}"
    return f"version: 1\nreceivers: [{{name: x, slack: {{channel: '#x'}}}}]\nroute: {body}"


def _condition_bomb(levels: int) -> str:
    leaf = "{type: threshold, metric: spend_usd, window: 1m, op: '>', value: 1}"
    body = f"&c0 {leaf}"
    for i in range(1, levels):
        body = f"&c{i} {{type: all, conditions: [{body}" + f", *c{i - 1}" * 8 + "]}"
    return f"version: 1\nrules: [{{name: bomb, severity: low, condition: {body}}}]"


@pytest.mark.parametrize(
    "text",
    [
        _laughs(9),
        _laughs(9, "route"),
        _laughs(12, "receivers"),
        _route_bomb(9),
        _route_bomb(9, "{receiver: x, oops: 1}"),
        _condition_bomb(9),
    ],
    ids=["laughs", "laughs-route", "laughs-12", "routes", "routes-invalid", "conditions"],
)
def test_alias_bombs_are_refused_quickly(text: str) -> None:
    assert len(text) < 2000
    error = refusal(text, max_mb=16)
    assert [i.message for i in error.issues] == [
        f"invalid YAML: the file has over {MAX_NODES} values once its aliases (*name) are expanded"
    ]
    assert "aliases" in error.issues[0].hint


def test_a_few_aliases_are_fine() -> None:
    assert parse_or_refusal(_route_bomb(3)) is not None
    assert parse_or_refusal(_condition_bomb(3)) is not None


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nroute: &a {receiver: x, routes: [*a]}",
        "version: 1\nrules: &a [*a]",
        "version: 1\nrules: [{name: r, severity: low,"
        " condition: &c {type: all, conditions: [*c]}}]",
    ],
)
def test_self_referencing_aliases_are_refused(text: str) -> None:
    error = refusal(text)
    assert error.issues[0].message == "invalid YAML: an alias refers to a node that contains it"


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nrules: " + "[" * 100_000 + "]" * 100_000,
        "version: 1\nroute: " + "{a: " * 5_000 + "1" + "}" * 5_000,
        "version: 1\nrules:\n" + "".join("  " * i + "-\n" for i in range(1, 400)),
    ],
)
def test_deep_nesting_is_refused_without_recursion(text: str) -> None:
    if len(text) > MAX_RULE_FILE_BYTES:
        text = text[: MAX_RULE_FILE_BYTES - 1]  # still far deeper than the limit
    error = refusal(text)
    assert (
        error.issues[0].message == f"invalid YAML: the file nests deeper than {MAX_NESTING} levels"
    )


def test_nesting_under_the_limit_is_validated_as_usual() -> None:
    error = refusal("version: 1\nrules: " + "[" * 40 + "]" * 40)
    assert error.issues[0].path == "rules[0]"


def test_huge_files_are_refused_unread(tmp_path: Path) -> None:
    text = "version: 1\n" + "# a comment\n" * (MAX_RULE_FILE_BYTES // 10)
    error = refusal(text, max_seconds=0.5)
    assert "byte limit for a rule file" in error.issues[0].message
    assert "split the rules" in error.issues[0].hint
    (tmp_path / "huge.yaml").write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_rule_dir(tmp_path)
    assert "byte limit for a rule file" in info.value.issues[0].message


def test_too_many_values_are_refused_quickly() -> None:
    text = "version: 1\nrules: [" + "1, " * (MAX_NODES + 10) + "1]"
    assert len(text) < MAX_RULE_FILE_BYTES
    error = refusal(text, max_seconds=10.0)
    assert error.issues[0].message == f"invalid YAML: the file has over {MAX_NODES} values"


def test_many_problems_are_listed_up_to_a_cap() -> None:
    text = "version: 1\nrules:\n" + "- {name: r}\n" * 300
    error = refusal(text)
    assert len(error.issues) == 201
    assert error.issues[-1].message.endswith("more problems not shown")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN", "'1e999'", "'NaN'", "inf"])
def test_non_finite_numbers_are_refused_where_they_are(value: str) -> None:
    text = (
        "version: 1\nrules:\n  - name: r\n    severity: low\n    condition: {type: threshold, "
        f"metric: spend_usd, window: 1m, op: '>', value: {value}}}\n"
    )
    (problem,) = refusal(text).issues
    assert (problem.line, problem.path) == (5, "rules[0].condition.value")
    assert problem.message == "Input should be a finite number"


def test_an_infinite_budget_is_refused() -> None:
    text = (
        "version: 1\nbudgets:\n  - {name: b, owner: me, tenant_id: t, period: day, "
        "limit_usd: .inf}\n"
    )
    (problem,) = refusal(text).issues
    assert (problem.path, problem.message) == (
        "budgets[0].limit_usd",
        "Input should be a finite number",
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\nwhen: 2026-13-45\n", 2),
        ("version: 1\nrules: !!int x\n", 2),
        ("version: 1\nrules: !!timestamp nope\n", 2),
        ("version: " + "9" * 5000 + "\n", 1),
    ],
)
def test_values_yaml_cannot_build_are_located(text: str, line: int) -> None:
    (problem,) = refusal(text).issues
    assert problem.line == line and problem.message.startswith("invalid YAML: cannot read")
