"""Registry, spec parsing and state dispatch."""

from __future__ import annotations

import orjson
import pytest

from spendfuse.detectors import (
    DEFAULT,
    BaseDetector,
    aliases,
    create,
    discover,
    from_state,
    list_detectors,
    register,
)
from spendfuse.detectors.fusion import Fusion
from spendfuse.detectors.lean_fusion import LeanFusion


def test_default_is_an_alias_of_the_measured_best() -> None:
    assert aliases()["default"] == DEFAULT == "lean_fusion"
    det = create("default")
    assert isinstance(det, LeanFusion)
    assert det.to_state()["name"] == "lean_fusion"  # state names the concrete detector
    assert create().params() == det.params()
    # a checkpoint taken while default was fusion still restores as fusion
    assert isinstance(from_state(create("fusion").to_state()), Fusion)


def test_create_accepts_name_spec_and_kwargs() -> None:
    a = create("fusion", history=500)
    b = create({"name": "fusion", "params": {"history": 500}})
    c = create({"name": "fusion", "params": {"history": 100}}, history=500)  # kwargs win
    assert a.params() == b.params() == c.params()
    assert a.history == 500


@pytest.mark.parametrize(
    "spec",
    ["nope", {"params": {}}, {"name": "fusion", "extra": 1}, 42],
)
def test_bad_specs_raise_value_error(spec: object) -> None:
    with pytest.raises(ValueError):
        create(spec)  # type: ignore[arg-type]


def test_list_detectors_and_discover() -> None:
    names = list_detectors()
    assert {"fusion", "holt_winters", "page_hinkley", "zscore"} <= set(names)
    assert "default" not in names
    assert "default" in list_detectors(include_aliases=True)
    assert set(names) <= set(discover())


def test_from_state_dispatches_on_name() -> None:
    for name in list_detectors():
        state = orjson.loads(orjson.dumps(create(name).to_state()))
        assert from_state(state).name == name
    with pytest.raises(ValueError):
        from_state({"params": {}})
    with pytest.raises(ValueError):
        from_state({"name": "nope", "params": {}, "state": {}})
    with pytest.raises(ValueError, match="not 'zscore'"):
        type(create("zscore")).from_state(create("fusion").to_state())


def test_register_rejects_duplicates_and_mismatched_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("fusion", Fusion)
    with pytest.raises(ValueError, match="must equal"):
        register("other_name", Fusion)
    with pytest.raises(ValueError, match="already registered"):
        register("default", Fusion)


def test_base_detector_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseDetector()  # type: ignore[abstract]
