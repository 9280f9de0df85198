"""The detector protocol shared by every spendfuse anomaly detector.

Why this shape: it mirrors river's ``AnomalyDetector`` (``score_one`` then ``learn_one`` on a
feature dict) so river models slot in naturally, and adds what a streaming service needs on top:

* ``to_state()`` / ``from_state()`` with *plain data only* (dicts, lists, str, int, float, bool,
  None) so per-stream state can be checkpointed through orjson into Kafka/RocksDB and restored in
  another process or version of Python -- never pickle, which is unsafe and version-fragile;
* hyper-parameters are keyword arguments stored under the same attribute name and validated in
  ``__init__`` (``ValueError`` naming the parameter), so a spec dict ``{"name", "params"}`` fully
  describes a detector and ``clone()`` can rebuild it with fresh state.

A point is ``{"t": datetime, "value": float}``; ``score_one`` returns a score in [0, 1] without
mutating anything, ``learn_one`` updates the state and returns None.
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

Point = Mapping[str, Any]
State = dict[str, Any]

STATE_VERSION = 1


@runtime_checkable
class Detector(Protocol):
    """What the rest of spendfuse relies on (structural, so river-like objects also fit)."""

    name: ClassVar[str]

    def score_one(self, x: Point) -> float:
        """Anomaly score of ``x`` in [0, 1]; read-only."""
        ...

    def learn_one(self, x: Point) -> None:
        """Update the state with ``x``."""
        ...

    def to_state(self) -> State:
        """Plain-data snapshot: ``{"name", "params", "state", "version"}``."""
        ...

    def clone(self) -> Detector:
        """Same hyper-parameters, fresh state."""
        ...


class BaseDetector(abc.ABC):
    """Implements params/state/clone plumbing; subclasses implement the algorithm.

    Subclasses declare their hyper-parameters as keyword arguments of ``__init__``, store each
    one under ``self.<name>``, validate them with the ``check_*`` helpers and implement
    ``_reset`` (fresh state), ``_get_state`` and ``_set_state`` (plain data both ways).
    """

    name: ClassVar[str] = ""
    #: ``from_state(d.to_state())`` is exactly ``d`` (every attribute, value and type) at any
    #: point of its life: a caller that keeps the detector it saved may go on with it instead
    #: of restoring it (the contract suite checks this at every step of a stream)
    exact_restore: ClassVar[bool] = False

    # -- algorithm -------------------------------------------------------------------------------
    @abc.abstractmethod
    def score_one(self, x: Point) -> float: ...

    @abc.abstractmethod
    def learn_one(self, x: Point) -> None: ...

    @abc.abstractmethod
    def _reset(self) -> None:
        """Initialise the learned state (called by ``__init__`` of subclasses)."""

    @abc.abstractmethod
    def _get_state(self) -> State:
        """Learned state as plain JSON-able data."""

    @abc.abstractmethod
    def _set_state(self, state: State) -> None:
        """Inverse of ``_get_state``."""

    # -- plumbing --------------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        # Cached per class: detector state is saved and restored on every bucket close, and
        # inspect.signature dominated that round trip.
        names = cls.__dict__.get("_param_names_cache")
        if names is None:
            sig = inspect.signature(cls.__init__)
            names = [p for p in sig.parameters if p != "self"]
            cls._param_names_cache = names  # type: ignore[attr-defined]
        return list(names)

    @classmethod
    def _param_reader(cls) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
        """The parameter names and one C-level getter of their values, cached per class (a
        detector's state, parameters included, is saved at every bucket close)."""
        hit = cls.__dict__.get("_param_reader_cache")
        if hit is None:
            names = tuple(cls.param_names())
            # one name more than needed: attrgetter of a single name returns no tuple
            getter = attrgetter(*names, names[0]) if names else (lambda obj: ())
            hit = (names, getter)
            cls._param_reader_cache = hit  # type: ignore[attr-defined]
        return hit

    def params(self) -> dict[str, Any]:
        """Hyper-parameters (the keyword arguments of ``__init__``)."""
        names, getter = self._param_reader()
        return dict(zip(names, getter(self), strict=False))

    def to_state(self) -> State:
        return {
            "name": self.name,
            "version": STATE_VERSION,
            "params": self.params(),
            "state": self._get_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        if state.get("name") != cls.name:
            raise ValueError(f"state is for detector {state.get('name')!r}, not {cls.name!r}")
        obj = cls(**state["params"])
        obj._set_state(dict(state["state"]))
        return obj

    def clone(self) -> Self:
        return type(self)(**self.params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


# -- parameter validation helpers -----------------------------------------------------------------
def check_int(name: str, value: Any, *, min_value: int = 0, max_value: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < min_value or (max_value is not None and value > max_value):
        hi = "" if max_value is None else f" and <= {max_value}"
        raise ValueError(f"{name} must be >= {min_value}{hi}, got {value!r}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    min_value: float = -math.inf,
    max_value: float = math.inf,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= min_value if min_open else value < min_value
    too_high = value >= max_value if max_open else value > max_value
    if too_low or too_high:
        lo = "(" if min_open else "["
        hi = ")" if max_open else "]"
        raise ValueError(f"{name} must be in {lo}{min_value}, {max_value}{hi}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def point_value(x: Point) -> float:
    """The point's value as a float (non-finite values are treated as 0 by callers)."""
    v = float(x["value"])
    return v if math.isfinite(v) else 0.0


def clip01(s: float) -> float:
    if s != s:  # NaN
        return 0.0
    return 0.0 if s < 0.0 else 1.0 if s > 1.0 else s
