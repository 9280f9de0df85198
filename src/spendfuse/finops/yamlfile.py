"""Read a small YAML configuration file into a pydantic model, with located errors.

Price books and allocation rules are written by hand, so a mistake is reported as
``prices.yaml:7:5 services[1].usd_per_unit: Input should be greater than or equal to 0``: every
problem, each with the line and column it points at. ``load_*`` does I/O; nothing here keeps
state. Files are small: anything over :data:`MAX_CONFIG_BYTES` is refused unread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from spendfuse.finops.errors import ConfigFileError

MAX_CONFIG_BYTES = 1024 * 1024
ModelT = TypeVar("ModelT", bound=BaseModel)


def _node_at(root: yaml.Node, loc: tuple[Any, ...], key: bool = False) -> yaml.Node:
    """The deepest node ``loc`` reaches (its parent when the last step is missing; the key's
    node rather than its value's when ``key``)."""
    node = root
    for pos, item in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            if key and pos == len(loc) - 1:
                return next((k for k, _ in node.value if k.value == item), node)
            child = next((v for k, v in node.value if k.value == item), None)
            if child is None:
                return node
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            if item >= len(node.value):
                return node
            node = node.value[item]
    return node


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out or "<file>"


def load_yaml_model(path: Path, model: type[ModelT]) -> ModelT:
    """Read ``path`` and validate it as ``model``; raise :class:`ConfigFileError` listing every
    problem with its line and column."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(name, [f"{name}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(
            name, [f"{name}: {len(raw)} bytes, over the {MAX_CONFIG_BYTES} byte limit"]
        )
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(name, [f"{where}: not valid YAML: {problem}"]) from None
    if root is None or data is None:
        raise ConfigFileError(name, [f"{name}: the file is empty"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            is_key = bool(loc) and loc[-1] == "[key]"
            if is_key:  # a mapping key that is not allowed: point at the key itself
                loc = loc[:-1]
                msg = f"not a known key: {msg}"
            mark = _node_at(root, loc, key=is_key).start_mark
            problems.append(f"{name}:{mark.line + 1}:{mark.column + 1} {_format_loc(loc)}: {msg}")
        raise ConfigFileError(name, problems) from None
