"""Columnar validation of a record's cost events: every column checked at once, pydantic only
for the rows that fail.

Validating each event with the pydantic model costs about 9 µs (ten Python callbacks per event:
the bool guards on numbers, the time zone and range checks on ``event_time``). Here a record's
events (an envelope of N, or one) are transposed into columns, one tuple per field, and each
column is checked with whole-column builtins that run in C (``set(map(type, col))``,
``min``/``max``, ``map(datetime.fromisoformat, col)``...). A row that passes every check is
built as a :class:`CostEvent` straight from the checked values, as pydantic would have built it.

The checks accept only inputs whose meaning is certain: plain JSON types in the shape a
well-behaved producer sends (an ``int`` for a count, an RFC 3339 string with ``T`` and a ``Z`` or
``±hh:mm`` zone for ``event_time``...). Anything else, bad or merely unusual (``"12"`` for a
count, an epoch number for a time, which the model accepts in lax mode), goes to
:func:`~spendfuse.schemas.codec.parse_cost_event_obj`, which decides it exactly as before and
explains a refusal with the same reason code and message. So the fast path can only be slower
than necessary, never decide differently; ``tests/fuzz/test_columnar_equivalence.py`` holds
the two to the same decision, reason and event fields on arbitrary inputs.

The plan is derived from the model's fields at import: a field whose type or constraints this
module does not recognize (a new field, a changed constraint) is not checked here, and every row
carrying it goes to pydantic, so changing :class:`CostEvent` can never let an event through
unchecked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from enum import Enum
from itertools import chain, repeat
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from spendfuse.schemas.cost_event import (
    EARLIEST_EVENT_TIME,
    LATEST_EVENT_TIME,
    SUPPORTED_SCHEMA_VERSIONS,
    Amount,
    CostEvent,
    Count,
    EventTime,
)
from spendfuse.schemas.errors import EventRejectedError

_BAD: Any = object()
"""What a scalar check returns for a value it cannot vouch for."""
_NONE = type(None)
_STR = frozenset({str})
_OPT_STR = frozenset({str, _NONE})
_INT = frozenset({int})
_NUMBER = frozenset({int, float})
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:[0-5]\d)", re.ASCII
)
"""The ``event_time`` shapes read here; on these ``datetime.fromisoformat`` and pydantic agree."""
_RFC3339_LINES = re.compile(f"(?:{_RFC3339.pattern}\n)*{_RFC3339.pattern}", re.ASCII)


def _without_none(col: Sequence[Any]) -> list[Any]:
    return [v for v in col if v is not None]


class _Check:
    """One field's validation, for a whole column and for one value.

    ``column`` returns the column's values as the model holds them, or None if any value is
    not certainly valid; ``scalar`` does the same for one value (``_BAD`` if not). Records of
    a few events are checked row by row with ``scalar``, which costs less than the column
    set-up there; the failing rows of a column are found with it too.
    """

    combinable: Hashable = None
    """Set on checks whose ``column`` returns the column unchanged: the columns of fields
    whose checks share this key are checked as one (a check has a fixed cost per call)."""

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        raise NotImplementedError

    def scalar(self, value: Any) -> Any:
        raise NotImplementedError


class _Str(_Check):
    def __init__(self, min_len: int, max_len: int | None, optional: bool) -> None:
        self.min_len, self.max_len, self.optional = min_len, max_len, optional
        self.types = _OPT_STR if optional else _STR
        self.combinable = ("str", min_len, max_len, optional)

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        types = set(map(type, col))
        if not types <= self.types:
            return None
        values = _without_none(col) if _NONE in types else col
        if values and self.min_len and min(map(len, values)) < self.min_len:
            return None
        if values and self.max_len is not None and max(map(len, values)) > self.max_len:
            return None
        return col

    def scalar(self, value: Any) -> Any:
        if value is None:
            return None if self.optional else _BAD
        if type(value) is not str or len(value) < self.min_len:
            return _BAD
        return _BAD if self.max_len is not None and len(value) > self.max_len else value


class _StrEnum(_Check):
    def __init__(self, enum: type[Enum]) -> None:
        self.members = {m.value: m for m in enum}  # the values are str (StrEnum)
        self.values = frozenset(self.members)

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        if set(map(type, col)) != _STR or not set(col) <= self.values:
            return None
        return list(map(self.members.__getitem__, col))

    def scalar(self, value: Any) -> Any:
        return self.members.get(value, _BAD) if type(value) is str else _BAD


class _Literal(_Check):
    """A literal of strings (``cache_status``) or of ints (``schema_version``)."""

    def __init__(self, choices: frozenset[Any], optional: bool) -> None:
        self.choices = choices | {None} if optional else choices
        self.types = frozenset(map(type, self.choices))
        self.combinable = ("literal", self.choices)

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        if not set(map(type, col)) <= self.types or not set(col) <= self.choices:
            return None
        return col

    def scalar(self, value: Any) -> Any:
        return value if type(value) in self.types and value in self.choices else _BAD


class _Count(_Check):
    """A whole number in [ge, le]; ``type(True) is bool``, so true/false are not counts here."""

    def __init__(self, ge: int, le: int, optional: bool) -> None:
        self.ge, self.le, self.optional = ge, le, optional
        self.types = _INT | {_NONE} if optional else _INT
        self.combinable = ("count", ge, le, optional)

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        types = set(map(type, col))
        if not types <= self.types:
            return None
        values = _without_none(col) if _NONE in types else col
        if values and (min(values) < self.ge or max(values) > self.le):
            return None
        return col

    def scalar(self, value: Any) -> Any:
        if value is None:
            return None if self.optional else _BAD
        if type(value) is not int or not self.ge <= value <= self.le:
            return _BAD
        return value


class _Amount(_Check):
    """A finite number in [ge, le], held as a float."""

    def __init__(self, ge: float, le: float, optional: bool) -> None:
        self.ge, self.le, self.optional = ge, le, optional
        self.types = _NUMBER | {_NONE} if optional else _NUMBER

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        types = set(map(type, col))
        if not types <= self.types:
            return None
        values = _without_none(col) if _NONE in types else col
        if values:
            try:
                if not all(map(math.isfinite, values)):
                    return None
            except OverflowError:  # an int too large for a float
                return None
            if min(values) < self.ge or max(values) > self.le:
                return None
        if int in types:
            return [v if v is None else float(v) for v in col]
        return col

    def scalar(self, value: Any) -> Any:
        if value is None:
            return None if self.optional else _BAD
        kind = type(value)
        if kind is float:
            return value if math.isfinite(value) and self.ge <= value <= self.le else _BAD
        if kind is int:
            return float(value) if self.ge <= value <= self.le else _BAD
        return _BAD


class _Bool(_Check):
    combinable = ("bool",)

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        return col if set(map(type, col)) == {bool} else None

    def scalar(self, value: Any) -> Any:
        return value if type(value) is bool else _BAD


class _EventTime(_Check):
    """An RFC 3339 string with a zone, in [EARLIEST_EVENT_TIME, LATEST_EVENT_TIME), in UTC."""

    def column(self, col: Sequence[Any]) -> Sequence[Any] | None:
        if set(map(type, col)) != _STR:
            return None
        joined = "\n".join(col)  # one regex pass over the column; no member holds a newline
        if joined.count("\n") != len(col) - 1 or not _RFC3339_LINES.fullmatch(joined):
            return None
        try:
            times = list(map(datetime.astimezone, map(datetime.fromisoformat, col), repeat(UTC)))
        except (ValueError, OverflowError):  # 2026-02-30, 24:00, past year 9999 once in UTC
            return None
        if min(times) < EARLIEST_EVENT_TIME or max(times) >= LATEST_EVENT_TIME:
            return None
        return times

    def scalar(self, value: Any) -> Any:
        if type(value) is not str or not _RFC3339.fullmatch(value):
            return _BAD
        try:
            time = datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError):
            return _BAD
        return time if EARLIEST_EVENT_TIME <= time < LATEST_EVENT_TIME else _BAD


class _Reference(BaseModel):
    """The field types the checkers above implement, as the model spells them."""

    count: Count
    optional_count: Count | None
    amount: Amount
    optional_amount: Amount | None
    event_time: EventTime


def _same_type(name: str, reference: str) -> bool:
    field, ref = CostEvent.model_fields[name], _Reference.model_fields[reference]
    return field.annotation == ref.annotation and field.metadata == ref.metadata


def _bounds(annotation: Any, metadata: list[Any]) -> tuple[Any, Any]:
    found = list(metadata)
    for arg in get_args(annotation):
        if get_origin(arg) is Annotated:
            for meta in arg.__metadata__:
                found.extend(getattr(meta, "metadata", [meta]))
    ge = next(m.ge for m in found if hasattr(m, "ge"))
    le = next(m.le for m in found if hasattr(m, "le"))
    return ge, le


def _check_for(name: str) -> _Check | None:
    """The check implementing field ``name``'s validation, or None if it is not recognized."""
    field = CostEvent.model_fields[name]
    annotation, metadata = field.annotation, field.metadata
    if _same_type(name, "event_time"):
        return _EventTime()
    for reference, optional in (("count", False), ("optional_count", True)):
        if _same_type(name, reference):
            return _Count(*_bounds(annotation, metadata), optional)
    for reference, optional in (("amount", False), ("optional_amount", True)):
        if _same_type(name, reference):
            return _Amount(*_bounds(annotation, metadata), optional)
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, UnionType) and _NONE in args
    inner = [a for a in args if a is not _NONE] if optional else [annotation]
    if len(inner) != 1:
        return None
    (kind,) = inner
    if kind is str and all(isinstance(m, MinLen | MaxLen) for m in metadata):
        min_len = max((m.min_length for m in metadata if isinstance(m, MinLen)), default=0)
        max_len = min((m.max_length for m in metadata if isinstance(m, MaxLen)), default=None)
        return _Str(min_len, max_len, optional)
    if metadata:
        return None
    if kind is bool and not optional:
        return _Bool()
    if isinstance(kind, type) and issubclass(kind, Enum) and issubclass(kind, str):
        return None if optional else _StrEnum(kind)
    if get_origin(kind) is Literal:
        choices = frozenset(get_args(kind))
        if name == "schema_version":  # parse_cost_event_obj refuses unsupported ones first
            choices &= SUPPORTED_SCHEMA_VERSIONS
        if all(type(v) is str for v in choices) or all(type(v) is int for v in choices):
            return _Literal(choices, optional)
    return None


_FIELDS: tuple[str, ...] = tuple(CostEvent.model_fields)
_CHECKS: dict[str, _Check | None] = {name: _check_for(name) for name in _FIELDS}
_REQUIRED = frozenset(n for n, f in CostEvent.model_fields.items() if f.is_required())
_TEMPLATE: dict[str, Any] = {
    name: None if field.is_required() else field.get_default(call_default_factory=True)
    for name, field in CostEvent.model_fields.items()
}
"""Every field in declaration order (as pydantic fills ``__dict__``), defaults in place."""
_STR_LENGTHS: dict[str, tuple[int, float]] = {
    name: (check.min_len, math.inf if check.max_len is None else check.max_len)
    for name, check in _CHECKS.items()
    if type(check) is _Str
}
"""The string fields' length bounds, for the inline check of :func:`_validate_row`."""
_UNCHECKED = frozenset(n for n, c in _CHECKS.items() if c is None)
"""Fields no check here implements (none today): rows carrying one go to the model."""
_MUTABLE_DEFAULTS = any(
    not isinstance(v, str | int | float | bool | Enum | _NONE) for v in _TEMPLATE.values()
)


ROWS_BELOW = 12
"""Groups of fewer events than this are checked row by row: a column check has a fixed cost
per call, and below about 12 events the rows cost less (benchmarks/decode_throughput.py
--sweep-rows)."""


def _build(values: dict[str, Any], fields_set: set[str], extra: dict[str, Any]) -> CostEvent:
    """A :class:`CostEvent` from checked values, as ``model_validate`` leaves it: every field
    in ``__dict__`` in declaration order, the input's keys as the fields set, extras apart."""
    event = _new(CostEvent)
    _set(event, "__dict__", values)
    _SET_FIELDS_SET(event, fields_set)
    _SET_EXTRA(event, extra)
    _SET_PRIVATE(event, None)
    return event


_new = object.__new__
_set = object.__setattr__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
"""BaseModel's slot setters, half the cost of ``object.__setattr__`` by name."""


def explain(obj: Any) -> CostEvent | EventRejectedError:
    """The model's verdict on one parsed event: the event, or the refusal with its reason."""
    from spendfuse.schemas.codec import parse_cost_event_obj  # codec imports this module

    try:
        return parse_cost_event_obj(obj)
    except EventRejectedError as exc:
        return exc


def validate_events(objs: Sequence[Any]) -> list[CostEvent | EventRejectedError]:
    """Validate parsed events (one per element) as columns, with one result per element, in
    order, exactly as :func:`~spendfuse.schemas.codec.parse_cost_event_obj` decides each."""
    out: list[Any] = [None] * len(objs)
    if _MUTABLE_DEFAULTS:  # never today: a mutable default could not be shared by rows
        return [explain(obj) for obj in objs]
    keys = [tuple(obj) if type(obj) is dict else None for obj in objs]
    groups: dict[tuple[Any, ...], list[int]] = {}
    if keys and keys[0] is not None and keys.count(keys[0]) == len(keys):
        groups[keys[0]] = list(range(len(objs)))  # the usual case: one producer, one shape
    else:
        for i, key in enumerate(keys):
            if key is None:
                out[i] = explain(objs[i])
            else:
                groups.setdefault(key, []).append(i)
    for key, indexes in groups.items():
        if len(indexes) < ROWS_BELOW:
            for i in indexes:
                out[i] = _validate_row(objs[i])
        else:
            _validate_group(objs, key, indexes, out)
    return out


def validate_event(obj: Any) -> CostEvent | EventRejectedError:
    """:func:`validate_events` of one event (a record of one), without the grouping."""
    return _validate_row(obj) if type(obj) is dict else explain(obj)


def _validate_row(obj: dict[Any, Any]) -> CostEvent | EventRejectedError:
    """One event checked field by field; what cannot be vouched for goes to the model.

    A plain string within its length bounds, the commonest value, is checked inline: a
    method call per field would cost more than the check."""
    values = _TEMPLATE.copy()
    extra: dict[str, Any] = {}
    checks, lengths = _CHECKS, _STR_LENGTHS
    for name, value in obj.items():
        if type(value) is str:
            bounds = lengths.get(name)
            if bounds is not None and bounds[0] <= len(value) <= bounds[1]:
                values[name] = value
                continue
        check = checks.get(name, _BAD)
        if check is _BAD:  # not a field: kept as an extra, as the model keeps it
            if type(name) is not str:
                return explain(obj)
            extra[name] = value
            continue
        if check is None:
            return explain(obj)
        checked = check.scalar(value)
        if checked is _BAD:
            return explain(obj)
        values[name] = checked
    if not _REQUIRED.issubset(obj):
        return explain(obj)
    return _build(values, set(obj), extra)


def _validate_group(
    objs: Sequence[Any], key: tuple[Any, ...], indexes: list[int], out: list[Any]
) -> None:
    """Validate rows that share one key order, so that their values transpose into columns."""
    if (
        not _REQUIRED.issubset(key)
        or _UNCHECKED.intersection(key)
        or not all(type(name) is str for name in key)
    ):
        for i in indexes:
            out[i] = explain(objs[i])
        return
    rows = [objs[i] for i in indexes]
    checked = check_columns(key, rows)
    if isinstance(checked, set):
        for j in checked:
            out[indexes[j]] = explain(rows[j])
        good = [i for j, i in enumerate(indexes) if j not in checked]
        if good:
            _validate_group(objs, key, good, out)
        return
    _build_rows(key, indexes, *checked, out)


CheckedColumns = tuple[list[str], list[Sequence[Any]], list[str], list[Sequence[Any]]]
"""Field names, their checked columns (as the model holds the values), extra names, extras."""


def check_columns(
    key: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> CheckedColumns | set[int]:
    """Check rows sharing the key order ``key`` as columns: the checked columns, or the
    positions of the rows that failed a check (for the model to decide).

    The columns are what an engine reading columns would take, with no per-event object built
    (``benchmarks/decode_throughput.py`` times that too)."""
    columns = list(zip(*map(dict.values, rows), strict=True))
    checked: list[Sequence[Any]] = []
    field_names: list[str] = []
    extra_names: list[str] = []
    extra_columns: list[Sequence[Any]] = []
    alike: dict[Hashable, list[tuple[str, Sequence[Any], _Check]]] = {}
    bad: set[int] = set()
    for name, column in zip(key, columns, strict=True):
        check = _CHECKS.get(name, _BAD)
        if check is _BAD:
            extra_names.append(name)
            extra_columns.append(column)
        elif check.combinable is not None:
            alike.setdefault(check.combinable, []).append((name, column, check))
        else:
            _check_column(name, column, check, field_names, checked, bad)
    for fields in alike.values():
        together = fields[0][1] if len(fields) == 1 else list(chain(*(f[1] for f in fields)))
        if fields[0][2].column(together) is not None:
            field_names.extend(f[0] for f in fields)
            checked.extend(f[1] for f in fields)
            continue
        for name, column, check in fields:
            _check_column(name, column, check, field_names, checked, bad)
    return bad or (field_names, checked, extra_names, extra_columns)


def _check_column(
    name: str,
    column: Sequence[Any],
    check: _Check,
    field_names: list[str],
    checked: list[Sequence[Any]],
    bad: set[int],
) -> None:
    """Check one column: its values go to ``checked``, or its failing rows to ``bad``."""
    values = check.column(column)
    if values is None:  # find the failing rows, one value at a time
        failing = {j for j, v in enumerate(column) if check.scalar(v) is _BAD}
        bad.update(failing or range(len(column)))
        return
    field_names.append(name)
    checked.append(values)


def _build_rows(
    key: tuple[str, ...],
    indexes: list[int],
    field_names: list[str],
    checked: list[Sequence[Any]],
    extra_names: list[str],
    extra_columns: list[Sequence[Any]],
    out: list[Any],
) -> None:
    """One :class:`CostEvent` per row from the checked columns (the hot loop: names bound
    locally, no per-row zip checks; every column has one value per row)."""
    fields_set, template, new, set_ = set(key), _TEMPLATE, _new, _set
    copy_set, copy_dict = set.copy, dict.copy
    set_fields_set, set_extra, set_private = _SET_FIELDS_SET, _SET_EXTRA, _SET_PRIVATE
    rows = zip(*checked)  # noqa: B905 (equal lengths: the columns of one group)
    if extra_names:
        extras = [dict(zip(extra_names, row)) for row in zip(*extra_columns)]  # noqa: B905
    else:
        extras = [{} for _ in indexes]
    for i, values, extra in zip(indexes, rows, extras):  # noqa: B905
        event_values = copy_dict(template)
        event_values.update(zip(field_names, values))  # noqa: B905
        event = new(CostEvent)
        set_(event, "__dict__", event_values)
        set_fields_set(event, copy_set(fields_set))
        set_extra(event, extra)
        set_private(event, None)
        out[i] = event
