"""The columnar decoder's plan covers the whole cost event contract.

Every field of :class:`CostEvent` must have a column check: a field the plan does not recognize
is still decided correctly (every event carrying it goes to the pydantic model), but silently
loses the columnar speed. A field added to the model needs a check in ``schemas/columnar.py``.
"""

from __future__ import annotations

import orjson

from spendfuse.schemas import columnar
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.cost_event import MAX_AMOUNT, MAX_COUNT, MAX_ID_CHARS, CostEvent
from tests.support.events import make_event


def test_every_field_of_the_model_has_a_column_check() -> None:
    assert set(columnar._CHECKS) == set(CostEvent.model_fields)
    assert not columnar._UNCHECKED


def test_the_bounds_come_from_the_model() -> None:
    count, amount = columnar._CHECKS["input_tokens"], columnar._CHECKS["allocated_cost_usd"]
    assert isinstance(count, columnar._Count) and (count.ge, count.le) == (0, MAX_COUNT)
    assert isinstance(amount, columnar._Amount) and (amount.ge, amount.le) == (0, MAX_AMOUNT)
    ids = columnar._CHECKS["cost_event_id"]
    assert isinstance(ids, columnar._Str) and (ids.min_len, ids.max_len) == (1, MAX_ID_CHARS)
    label = columnar._CHECKS["cost_center"]
    assert isinstance(label, columnar._Str) and (label.min_len, label.max_len) == (0, 128)
    assert label.optional


def test_accepted_events_are_the_models_own() -> None:
    raw = [make_event("u", seconds=i, step_number=i, note={"a": i}) for i in range(20)]
    events = columnar.validate_events(orjson.loads(orjson.dumps(raw)))
    assert events == [parse_cost_event_obj(e) for e in orjson.loads(orjson.dumps(raw))]
    event = events[3]
    assert isinstance(event, CostEvent)
    event.unit_price = 0.5  # as pricing sets fields: each event has its own fields set
    assert "unit_price" in event.model_fields_set
    assert "unit_price" not in events[4].model_fields_set
    assert events[4].model_extra == {"note": {"a": 4}}
