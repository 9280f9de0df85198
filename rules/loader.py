"""Load rule files: YAML with node marks, pydantic validation, errors with file:line:column.

Every error is reported (not only the first), in the form
``rules/prod.yaml:14:7 rules[0].condition.value: Input should be greater than 0 (hint: ...)``.
The YAML is composed into nodes (which carry ``start_mark``), and each pydantic error location
is walked through the node tree to find where it points. ``load_*`` functions do I/O;
``parse_*`` are pure.

Rule files are configuration, but they may come from many hands, so hostile input is refused
with a located error before anything walks it: files over :data:`MAX_RULE_FILE_BYTES`, nesting
deeper than :data:`MAX_NESTING`, more than :data:`MAX_NODES` nodes once aliases are expanded (a
"billion laughs" file is a few hundred bytes whose aliases expand to millions of nodes, which
validation would walk one by one), aliases that contain themselves, and values YAML cannot build
(``!!int x``, a 13th month). NaN and infinities are refused by the model, wherever they are.
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

MAX_RULE_FILE_BYTES = 512 * 1024
"""Larger rule files are refused unread (the default pack is under 10 KB in all)."""
MAX_NESTING = 50
"""Deepest nesting of mappings and sequences (the default pack nests 7 deep)."""
MAX_NODES = 25_000
"""Most YAML nodes (keys and values) in a file once aliases are expanded: about 1,500 rules or
budgets; the default pack has under 700. It bounds the time to read a file to about a second."""
MAX_LISTED_ERRORS = 200
"""Most problems listed for one file; the rest are counted."""
DEFAULT_PACK = Path(__file__).parent / "packs" / "default"
EXAMPLES_PACK = Path(__file__).parent / "packs" / "examples"
DEMO_PACK = Path(__file__).parent / "packs" / "demo"  # `spendfuse demo` runs it as its rules dir
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
                tags = {
                    k.value: v.value
                    for k, v in node.value
                    if k.value in _UNION_TAGS and isinstance(v, yaml.ScalarNode)
                }
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
            node = (
                node.value[item]
                if isinstance(node, yaml.SequenceNode) and item < len(node.value)
                else None
            )
            continue
        if isinstance(node, yaml.MappingNode):
            tags = {
                v.value
                for k, v in node.value
                if k.value in _UNION_TAGS and isinstance(v, yaml.ScalarNode)
            }
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
        "rules": m.RuleSpec,
        "budgets": m.BudgetSpec,
        "quotas": m.BudgetSpec,
        "tenants": m.TenantSpec,
        "route": m.RouteSpec,
        "routes": m.RouteSpec,
        "inhibit_rules": m.InhibitRule,
        "receivers": m.ReceiverSpec,
        "scope": m.Scope,
        "when": m.When,
        "params": m.DegradeParams,
        "slack": m.SlackReceiver,
        "threshold": m.ThresholdCondition,
        "ratio_to_baseline": m.RatioToBaselineCondition,
        "detector_score": m.DetectorScoreCondition,
        "budget_percent": m.BudgetPercentCondition,
        "anomaly": m.AnomalyCondition,
        "prior": m.ColdStartPrior,
        "session_outlier": m.SessionOutlierCondition,
        "degrade": m.DegradeAction,
        "kill_switch": m.KillSwitchAction,
        "alert": m.AlertAction,
        "on_exhausted": m.DegradeAction,
    }
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
        return (
            f"unknown {err['ctx']['discriminator'].strip(chr(39))} {tag!r}",
            f"{tip}one of {', '.join(options)}",
        )
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, tail = msg.partition("; ")
    return (head, tail) if sep else (msg, "")


class _RuleFileLoader(yaml.SafeLoader):
    """The safe loader with the limits above, and every value error located at its node."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_NESTING or self.nodes > MAX_NODES:
                mark = self.peek_event().start_mark
                if self.depth > MAX_NESTING:
                    raise _LimitError(
                        f"the file nests deeper than {MAX_NESTING} levels",
                        mark,
                        "flatten it: rules nest a few levels at most",
                    )
                raise _LimitError(f"the file has over {MAX_NODES} values", mark, _SPLIT_HINT)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {str(node.value)[:40]!r}: {exc}", node.start_mark
            ) from None


class _LimitError(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None, hint: str) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark, self.hint = problem, mark, hint


_SPLIT_HINT = "split the rules into several files in the rules directory"


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the tree once every alias is expanded (capped past ``MAX_NODES``); raises
    ``_LimitError`` on an alias inside the node it names. Linear in the composed nodes."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            on_path.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise _LimitError(
                "an alias refers to a node that contains it",
                node.start_mark,
                "an alias (*name) cannot be used inside its own anchor (&name)",
            )
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _read_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree and the data built from it, within the limits, or raise."""
    if len(text) > MAX_RULE_FILE_BYTES:  # characters: a cheap lower bound of the bytes
        raise RuleFileError(
            [
                RuleIssue(
                    file,
                    1,
                    1,
                    "",
                    f"the file is over the {MAX_RULE_FILE_BYTES}-byte limit for a rule "
                    f"file ({len(text)} characters)",
                    _SPLIT_HINT,
                )
            ]
        )
    loader: _RuleFileLoader | None = None
    try:
        loader = _RuleFileLoader(text)  # reads the text: refuses unprintable characters
        root = loader.get_single_node()
        if root is not None and _expanded_size(root) > MAX_NODES:
            raise _LimitError(
                f"the file has over {MAX_NODES} values once its aliases (*name) are expanded",
                root.start_mark,
                "write the repeated parts out instead of nesting aliases of aliases",
            )
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        hint = exc.hint if isinstance(exc, _LimitError) else ""
        raise RuleFileError(
            [RuleIssue(file, line, col, "", f"invalid YAML: {problem}", hint)]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def parse_rule_file(text: str, file: str) -> RuleFile:
    """Validate one file's text; raises :class:`RuleFileError` listing every problem."""
    root, data = _read_yaml(text, file)
    if root is None or not isinstance(data, dict):
        raise RuleFileError(
            [
                RuleIssue(
                    file,
                    1,
                    1,
                    "",
                    "expected a mapping with version: 1",
                    "start the file with `version: 1`",
                )
            ]
        )
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        raise RuleFileError(_issues(exc, root, file)) from None


def _issues(exc: ValidationError, root: yaml.Node, file: str) -> list[RuleIssue]:
    issues = []
    errors = exc.errors()
    for err in errors[:MAX_LISTED_ERRORS]:
        loc = tuple(err["loc"])
        node, _found = _walk(root, loc, key=err["type"] == "extra_forbidden")
        mark = node.start_mark
        message, hint = _message(dict(err))
        issues.append(
            RuleIssue(
                file,
                mark.line + 1,
                mark.column + 1,
                _format_loc(loc, root),
                message,
                hint or _hint(dict(err), loc),
            )
        )
    if len(errors) > MAX_LISTED_ERRORS:
        issues.append(
            RuleIssue(
                file,
                issues[-1].line,
                issues[-1].column,
                "",
                f"and {len(errors) - MAX_LISTED_ERRORS} more problems not shown",
                "fix the ones above first",
            )
        )
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
            if path.stat().st_size > MAX_RULE_FILE_BYTES:
                raise RuleFileError(
                    [
                        RuleIssue(
                            str(path),
                            1,
                            1,
                            "",
                            f"the file is {path.stat().st_size} bytes, over the "
                            f"{MAX_RULE_FILE_BYTES}-byte limit for a rule file",
                            _SPLIT_HINT,
                        )
                    ]
                )
            files.append((str(path), _parse_cached(path.read_bytes(), str(path))))
        except (RuleFileError, UnicodeDecodeError) as exc:
            issues.extend(
                getattr(exc, "issues", None)
                or [RuleIssue(str(path), 1, 1, "", "not UTF-8 text", "save the file as UTF-8")]
            )
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
