"""Load rule files: YAML with node marks, pydantic validation, errors with file:line:column.

Every error is reported (not only the first), in the form
``rules/prod.yaml:14:7 rules[0].condition.value: Input should be greater than 0 (hint: ...)``.
The YAML is composed into nodes (which carry ``start_mark``), and each pydantic error location
is walked through the node tree to find where it points. ``load_*`` functions do I/O;
``parse_*`` are pure.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from spendfuse.rules.errors import RuleFileError, RuleIssue
from spendfuse.rules.model import RuleFile
from spendfuse.rules.ruleset import RuleSet, merge_files

DEFAULT_PACK = Path(__file__).parent / "packs" / "default"
EXAMPLES_PACK = Path(__file__).parent / "packs" / "examples"
_UNION_TAGS = ("type", "kind")


def _walk(node: yaml.Node, loc: tuple[Any, ...], key: bool = False) -> tuple[yaml.Node, bool]:
    """The node ``loc`` points at (its key node if ``key``), and whether it was found (else
    its nearest parent)."""
    for pos, item in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == item), None)
            if key and child is not None and pos == len(loc) - 1:
                return next(k for k, _ in node.value if k.value == item), True
            if child is None:
                key = next((k for k, _ in node.value if k.value == item), None)
                tags = {k.value: v.value for k, v in node.value if k.value in _UNION_TAGS}
                if item in tags.values():
                    continue  # a discriminated union's tag in the location: stay here
                if key is not None:
                    return key, True
                return node, False
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            if item >= len(node.value):
                return node, False
            node = node.value[item]
        else:
            continue  # e.g. a union member name on a scalar
    return node, True


def _format_loc(loc: tuple[Any, ...], root: yaml.Node) -> str:
    out = ""
    node: yaml.Node | None = root
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
            node = node.value[item] if isinstance(node, yaml.SequenceNode) and \
                item < len(node.value) else None  # fmt: skip
            continue
        if isinstance(node, yaml.MappingNode):
            tags = {v.value for k, v in node.value if k.value in _UNION_TAGS}
            if item in tags:
                continue
            node = next((v for k, v in node.value if k.value == item), None)
        elif node is not None and not isinstance(node, yaml.MappingNode):
            continue
        out += f".{item}" if out else str(item)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model owning the last field of ``loc`` (for did-you-mean on extra keys)."""
    from spendfuse.rules import model as m

    names = [x for x in loc[:-1] if isinstance(x, str)]
    last = names[-1] if names else ""
    tables: dict[str, type[BaseModel]] = {
        "rules": m.RuleSpec, "budgets": m.BudgetSpec, "quotas": m.BudgetSpec,
        "tenants": m.TenantSpec, "route": m.RouteSpec, "routes": m.RouteSpec,
        "inhibit_rules": m.InhibitRule, "receivers": m.ReceiverSpec, "scope": m.Scope,
        "when": m.When, "params": m.DegradeParams, "slack": m.SlackReceiver,
        "threshold": m.ThresholdCondition, "ratio_to_baseline": m.RatioToBaselineCondition,
        "detector_score": m.DetectorScoreCondition, "budget_percent": m.BudgetPercentCondition,
        "degrade": m.DegradeAction, "kill_switch": m.KillSwitchAction, "alert": m.AlertAction,
        "on_exhausted": m.DegradeAction,
    }  # fmt: skip
    return tables.get(last, m.RuleFile if not names else None)


def _hint(err: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind, msg = err["type"], str(err.get("msg", ""))
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        fields = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
        near = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        return f"did you mean {near[0]!r}?" if near else f"allowed fields: {', '.join(fields)}"
    if "bad duration" in msg:
        from spendfuse.rules.durations import DURATION_HINT

        return DURATION_HINT
    if "bad matcher" in msg:
        from spendfuse.rules.matchers import MATCHER_HINT

        return MATCHER_HINT
    if kind == "missing" and loc and loc[-1] == "owner":
        return "every budget needs an owner: the person, team or channel told when it burns"
    if kind == "union_tag_not_found":
        return "set type: (conditions) or kind: (actions)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "use a number that satisfies the bound (ratios and percents are over 0)"
    if kind == "literal_error":
        return f"use one of the listed values, e.g. {msg.split(' ')[-1]}"
    return ""


def _message(err: dict[str, Any]) -> tuple[str, str]:
    """The message, and a did-you-mean hint split off it when the validator gave one."""
    if err["type"] == "union_tag_invalid":
        tag, expected = err["ctx"]["tag"], err["ctx"]["expected_tags"]
        options = [t.strip(" '") for t in str(expected).split(",")]
        near = difflib.get_close_matches(str(tag), options, n=1)
        tip = f"did you mean {near[0]!r}? " if near else ""
        return f"unknown {err['ctx']['discriminator'].strip(chr(39))} {tag!r}", \
            f"{tip}one of {', '.join(options)}"  # fmt: skip
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, tail = msg.partition("; ")
    return (head, tail) if sep else (msg, "")


def parse_rule_file(text: str, file: str) -> RuleFile:
    """Validate one file's text; raises :class:`RuleFileError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError([RuleIssue(file, line, col, "", f"invalid YAML: {problem}")]) from None
    if root is None or not isinstance(data, dict):
        raise RuleFileError([RuleIssue(file, 1, 1, "", "expected a mapping with version: 1",
                                       "start the file with `version: 1`")])  # fmt: skip
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        raise RuleFileError(_issues(exc, root, file)) from None


def _issues(exc: ValidationError, root: yaml.Node, file: str) -> list[RuleIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        node, _found = _walk(root, loc, key=err["type"] == "extra_forbidden")
        mark = node.start_mark
        message, hint = _message(dict(err))
        issues.append(RuleIssue(file, mark.line + 1, mark.column + 1, _format_loc(loc, root),
                                message, hint or _hint(dict(err), loc)))  # fmt: skip
    return issues


@lru_cache(maxsize=256)
def _parse_cached(content: bytes, file: str) -> RuleFile:
    """Parsed files by content: reloads and every ``Engine.default()`` re-parse only what
    changed (the models are never mutated after validation)."""
    return parse_rule_file(content.decode("utf-8"), file)


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rule_dir(directory: Path, base: RuleSet | None = None) -> RuleSet:
    """Load and merge every ``*.yaml`` in ``directory`` (on top of ``base``), or raise with all
    the errors of all the files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleFileError([RuleIssue(str(directory), 1, 1, "", "no such rules directory")])
    files: list[tuple[str, RuleFile]] = []
    issues: list[RuleIssue] = []
    for path in rule_files(directory):
        try:
            files.append((str(path), _parse_cached(path.read_bytes(), str(path))))
        except (RuleFileError, UnicodeDecodeError) as exc:
            issues.extend(getattr(exc, "issues", None) or [
                RuleIssue(str(path), 1, 1, "", "not UTF-8 text", "save the file as UTF-8")])
    if issues:
        raise RuleFileError(issues)
    return merge_files(files, base)


def load_default_pack() -> RuleSet:
    return load_rule_dir(DEFAULT_PACK)


def load_rules(rules_dir: Path | None, default_pack: bool = True) -> RuleSet:
    """The default pack (unless disabled) with ``rules_dir``'s files merged on top."""
    base = load_default_pack() if default_pack else None
    if rules_dir is None:
        return base or RuleSet()
    return load_rule_dir(Path(rules_dir), base)
