"""One contract suite, run against every registered detector.

Why: the streaming service treats detectors interchangeably -- it checkpoints their state to
Kafka/RocksDB as JSON, restores it elsewhere, clones them per stream and pages on their scores --
so every detector must honour the same guarantees. New detectors are covered automatically.
"""

from __future__ import annotations

import copy
import math
import statistics
from typing import Any

import orjson
import pytest

from spendfuse.detectors import BaseDetector, Detector, create, discover, from_state

from .support import feed, seasonal_stream

NAMES = discover()


def _json_state(det: BaseDetector) -> bytes:
    return orjson.dumps(det.to_state())


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return seasonal_stream(1600, spikes={900: 80.0})


@pytest.mark.parametrize("name", NAMES)
def test_protocol_shape(name: str) -> None:
    det = create(name)
    assert isinstance(det, Detector)
    assert det.name == name
    assert set(det.to_state()) >= {"name", "params", "state"}


@pytest.mark.parametrize("name", NAMES)
def test_state_roundtrips_through_orjson_and_replays_identically(
    name: str, stream: list[dict[str, Any]]
) -> None:
    det = create(name)
    feed(det, stream[:1000])
    blob = _json_state(det)
    restored = from_state(orjson.loads(blob))
    assert type(restored) is type(det)
    assert _json_state(restored) == blob  # plain data, nothing lost
    rest = stream[1000:]
    assert feed(restored, rest) == feed(det, rest)  # exactly the same scores
    assert _json_state(restored) == _json_state(det)
    # the class-level entry point works as well
    assert _json_state(type(det).from_state(orjson.loads(blob))) == blob


@pytest.mark.parametrize("name", NAMES)
def test_clone_has_same_params_and_fresh_state(name: str, stream: list[dict[str, Any]]) -> None:
    det = create(name)
    feed(det, stream[:400])
    twin = det.clone()
    assert type(twin) is type(det)
    assert twin.params() == det.params()
    assert _json_state(twin) == _json_state(create(name))
    assert feed(twin, stream[:400]) == feed(create(name), stream[:400])


@pytest.mark.parametrize("name", NAMES)
def test_score_one_is_read_only(name: str, stream: list[dict[str, Any]]) -> None:
    det = create(name)
    feed(det, stream[:600])
    before = _json_state(det)
    for x in (stream[600], stream[900], {"t": stream[601]["t"], "value": 1e9}):
        x_copy = copy.deepcopy(x)
        s1 = det.score_one(x)
        s2 = det.score_one(x)
        assert s1 == s2
        assert x == x_copy
        assert _json_state(det) == before
    assert det.learn_one(stream[600]) is None


@pytest.mark.parametrize("name", NAMES)
def test_finite_score_before_learning_and_zero_in_grace(name: str) -> None:
    det = create(name)
    points = seasonal_stream(5)
    s = det.score_one(points[0])
    assert math.isfinite(s) and 0.0 <= s <= 1.0
    grace = det.params().get("grace_period")
    if grace:
        assert all(s == 0.0 for s in feed(det, seasonal_stream(min(grace, 50))))


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_finite_and_in_unit_interval(name: str, stream: list[dict[str, Any]]) -> None:
    edge = [
        {"t": x["t"], "value": v}
        for x, v in zip(
            stream[:400],
            [0.0] * 150 + [5.0] * 100 + [1e12, -1e12, float("nan"), float("inf"), -3.0] * 30,
            strict=False,
        )
    ]
    for points in (stream, edge):
        scores = feed(create(name), points)
        assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("name", NAMES)
def test_state_size_stays_bounded(name: str) -> None:
    det = create(name)
    points = seasonal_stream(50_000, step_minutes=1, noise=3.0)
    feed(det, points[:25_000])
    size_half = len(_json_state(det))
    feed(det, points[25_000:])
    size_full = len(_json_state(det))
    assert size_full <= 1.1 * size_half + 1000


@pytest.mark.parametrize("name", NAMES)
def test_beats_chance_on_a_planted_spike(name: str) -> None:
    spike_at = 1500
    points = seasonal_stream(2000, seed=3, spikes={spike_at: 60.0})
    scores = feed(create(name), points)
    normal = scores[300:spike_at] + scores[spike_at + 30 :]
    assert scores[spike_at] > statistics.median(normal)


@pytest.mark.parametrize("name", NAMES)
def test_bad_params_raise_value_error_naming_the_param(name: str) -> None:
    cls = type(create(name))
    for param in cls.param_names():
        for bad in ("not-a-valid-value", float("nan"), -(10**9)):
            try:
                cls(**{param: bad})
            except ValueError as exc:
                assert param in str(exc), (param, bad, str(exc))
            else:
                # a few params legitimately accept any number (e.g. an offset); a string never
                assert not isinstance(bad, str), f"{name}.{param} accepted {bad!r}"
    with pytest.raises(ValueError, match="unknown params"):
        create(name, no_such_param=1)


@pytest.mark.parametrize("name", [n for n in NAMES if create(n).exact_restore])
def test_exact_restore_holds_at_every_step(name: str) -> None:
    """A detector that declares ``exact_restore`` restores from its saved state to exactly
    itself (every attribute, value and type) after every point, through spikes, a drop to
    zero, a gap and weekends: the engine then goes on with the live detector instead of
    restoring it, and must decide the same."""
    points = seasonal_stream(1500, spikes={500: 80.0, 1100: -100.0})
    points = points[:800] + points[1000:]  # a gap of most of a day
    det = create(name)
    for i, x in enumerate(points):
        det.score_one(x)
        det.learn_one(x)
        if i % 3 == 0 or 495 <= i <= 510 or 895 <= i <= 910:
            assert _plain(from_state(orjson.loads(_json_state(det)))) == _plain(det), i


def _plain(value: Any) -> Any:
    """An object's attributes as comparable data, recursively: types kept (an int restored as
    a float would change the state's JSON), floats by repr (NaN equals NaN)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "deque":
        return (type(value).__name__, [_plain(v) for v in value])
    if hasattr(value, "__dict__"):
        return (type(value).__name__, _plain(vars(value)))
    slots = [n for c in type(value).__mro__ for n in getattr(c, "__slots__", ())]
    if slots:
        return (type(value).__name__, {n: _plain(getattr(value, n, None)) for n in slots})
    return (type(value).__name__, value)
