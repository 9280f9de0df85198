"""Showback and chargeback: shared costs allocated by rules, the remainder shown, every dollar kept.

Runs the domain's worked month (tests/finops/worked.py) through rollups, allocation and the
FOCUS report, in process and through ``spendfuse report``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.finops import ConfigFileError, load_allocation_rules
from spendfuse.finops.allocation import AllocationRules
from spendfuse.finops.focus import FOCUS_COLUMNS, focus_table
from spendfuse.finops.report import period_end, report_rows
from spendfuse.finops.sources import rollups_from_events
from tests.finops.worked import JUNE, SHARED, TOTAL, WORKSHEET, month_events

EXAMPLES = Path(__file__).parents[2] / "src" / "spendfuse" / "finops"
RULES = EXAMPLES / "example_allocation.yaml"


@pytest.fixture(scope="module")
def table() -> Any:
    lines = [orjson.dumps(e) for e in month_events()]
    replay = rollups_from_events(lines, None)
    assert (replay.accepted, replay.refused, replay.duplicates) == (len(lines), 0, 0)
    return replay.table


@pytest.fixture(scope="module")
def rules() -> AllocationRules:
    return load_allocation_rules(RULES)


def cost_of(rows: list[dict[str, Any]], **where: Any) -> float:
    return sum(r["cost_usd"] for r in rows if all(r[k] == v for k, v in where.items()))


def test_monthly_showback_allocates_by_the_seed_rules(table: Any, rules: AllocationRules) -> None:
    rows = report_rows(table, "month", "showback", rules)
    assert cost_of(rows) == pytest.approx(TOTAL)
    copilot = "customer_service_copilot"
    assert cost_of(rows, use_case_id=copilot, cost_type="direct") == pytest.approx(79_000.0)
    for component, usd in WORKSHEET.items():
        assert cost_of(rows, use_case_id=copilot, component=component) == pytest.approx(usd)
    # GPU pool by GPU seconds: 30,000 s (AML) and 10,000 s (KYC) of $3,000
    assert cost_of(rows, pool="gpu_pool", use_case_id="aml_copilot") == pytest.approx(2250.0)
    assert cost_of(rows, pool="gpu_pool", use_case_id="kyc_extraction") == pytest.approx(750.0)
    # vector DB by query count: 300 and 100 queries of $400
    assert cost_of(rows, pool="vector_db", use_case_id=copilot) == pytest.approx(300.0)
    assert cost_of(rows, pool="vector_db", use_case_id="kyc_extraction") == pytest.approx(100.0)
    # idle reserved capacity to its owner; observability evenly over the 3 prod use cases
    idle = [r for r in rows if r["pool"] == "idle_reserved_gpu"]
    assert [(r["cost_center"], r["cost_usd"], r["share"]) for r in idle] == [
        ("cc_4102", pytest.approx(400.0), 1.0)
    ]
    obs = [r for r in rows if r["pool"] == "observability"]
    assert sorted(r["use_case_id"] for r in obs) == [
        "aml_copilot",
        copilot,
        "kyc_extraction",
    ]
    assert all(r["cost_usd"] == pytest.approx(30.0) for r in obs)
    # the platform baseline matches no rule: its own unallocated row, never hidden
    unallocated = [r for r in rows if r["cost_type"] == "unallocated"]
    assert [(r["use_case_id"], r["cost_usd"]) for r in unallocated] == [
        ("platform-baseline", pytest.approx(SHARED["platform"]))
    ]
    assert "no allocation rule matches" in unallocated[0]["reason"]


def test_chargeback_per_cost_center(table: Any, rules: AllocationRules) -> None:
    rows = report_rows(table, "month", "chargeback", rules)
    assert cost_of(rows) == pytest.approx(TOTAL)
    assert cost_of(rows, cost_center="cc_4102") == pytest.approx(79_000 + 300 + 400 + 30)
    assert cost_of(rows, cost_center="cc_5200") == pytest.approx(33 + 2250 + 30)
    assert cost_of(rows, cost_center="cc_6100") == pytest.approx(11.04 + 750 + 100 + 30)
    assert cost_of(rows, cost_center="cc_9000") == pytest.approx(5.0)  # sandbox: no share
    assert all(r["use_case_id"] is None for r in rows)
    keys = [(r["cost_center"], r["component"], r["model_or_service"], r["pool"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_without_rules_shared_costs_are_shown_unallocated(table: Any) -> None:
    rows = report_rows(table, "month", "showback", None)
    assert cost_of(rows) == pytest.approx(TOTAL)
    shared = SHARED["gpu_pool"] + SHARED["vector_db"] + SHARED["observability"] + 1000
    assert cost_of(rows, cost_type="unallocated") == pytest.approx(shared)
    assert cost_of(rows, cost_type="allocated") == 0


def test_days_months_and_quarters_add_up(table: Any, rules: AllocationRules) -> None:
    days = report_rows(table, "day", "showback", rules)
    assert cost_of(days) == pytest.approx(TOTAL)
    assert {r["period_start"].day for r in days if r["use_case_id"] == "sandbox_agent"} == {7}
    quarter = report_rows(table, "quarter", "chargeback", rules)
    assert {(r["period_start"], r["period_end"]) for r in quarter} == {
        (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    }
    assert cost_of(quarter) == pytest.approx(TOTAL)
    first_half = report_rows(
        table, "month", "showback", rules, end=datetime(2026, 6, 16, tzinfo=UTC)
    )
    assert cost_of(first_half) < TOTAL and cost_of(first_half, cost_type="unallocated") == 0


def test_period_ends() -> None:
    assert period_end(datetime(2026, 12, 31, tzinfo=UTC), "day") == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end(datetime(2026, 12, 1, tzinfo=UTC), "month") == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert period_end(datetime(2026, 10, 1, tzinfo=UTC), "quarter") == datetime(
        2027, 1, 1, tzinfo=UTC
    )


def test_allocation_edge_cases(table: Any) -> None:
    rules = AllocationRules.model_validate(
        {
            "version": 1,
            "pools": [
                {
                    "name": "gpu_pool",
                    "match": {"model_or_service": "a100-pool", "allocation_method": "shared_pool"},
                    "method": "proportional",
                    "driver": "gpu_seconds",
                    "consumers": {"environment": "staging"},
                },
                {
                    "name": "idle",
                    "match": {"model_or_service": "a100-reserved-idle"},
                    "method": "fixed",
                    "shares": [
                        {"to": {"cost_center": "cc_4102"}, "share": 0.6},
                        {"to": {"cost_center": "cc_5200"}, "share": 0.15},
                    ],
                },
            ],
        }
    )
    rows = report_rows(table, "month", "showback", rules)
    assert cost_of(rows) == pytest.approx(TOTAL)
    gpu = [r for r in rows if r["pool"] == "gpu_pool"]
    assert [(r["cost_type"], r["cost_usd"]) for r in gpu] == [("unallocated", 3000.0)]
    assert "no consumer had gpu_seconds usage" in gpu[0]["reason"]
    assert gpu[0]["tenant_id"] == "retail_banking_us"  # what the pool's rows share is kept
    idle = {(r["cost_type"], r["cost_center"]): r["cost_usd"] for r in rows if r["pool"] == "idle"}
    assert idle == {
        ("allocated", "cc_4102"): pytest.approx(240.0),
        ("allocated", "cc_5200"): pytest.approx(60.0),
        ("unallocated", "cc_1000"): pytest.approx(100.0),
    }


def test_bad_allocation_rules_are_located(tmp_path: Path) -> None:
    path = tmp_path / "alloc.yaml"
    path.write_text(
        "version: 1\n"
        "pools:\n"
        "  - name: gpu\n"
        "    match: {component: gpu}\n"
        "    method: proportional\n"
        "  - name: idle\n"
        "    match: {colour: red}\n"
        "    method: fixed\n"
        "    shares: [{to: {cost_center: a}, share: 0.7}, {to: {cost_center: b}, share: 0.7}]\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_allocation_rules(path)
    text = str(info.value)
    assert f"{path}:3:5 pools[0]: pool 'gpu': method proportional needs a driver" in text
    assert (
        f"{path}:7:13 pools[1].match.colour: not a known key: Input should be 'tenant_id'" in text
    )


def test_focus_columns_and_descriptions(table: Any, rules: AllocationRules) -> None:
    rows = report_rows(table, "month", "showback", rules)
    focus = focus_table(rows, "showback", "month")
    names = focus.column_names
    assert names[: len(FOCUS_COLUMNS)] == [n for n, _ in FOCUS_COLUMNS]
    assert all(
        n in names
        for n in (
            "BilledCost",
            "EffectiveCost",
            "ChargePeriodStart",
            "ChargePeriodEnd",
            "ServiceName",
            "ResourceId",
            "SubAccountId",
            "Tags",
        )
    )
    assert all(n.startswith("x_") for n in names[len(FOCUS_COLUMNS) :])
    data = focus.to_pylist()
    assert sum(r["BilledCost"] for r in data) == pytest.approx(TOTAL)
    model = next(
        r
        for r in data
        if r["x_Component"] == "model_call" and r["x_UseCaseId"] == "customer_service_copilot"
    )
    assert model["ChargePeriodStart"] == JUNE and model["SubAccountId"] == "retail_banking_us"
    assert model["ResourceId"] == "retail_banking_us/customer_service_copilot"
    assert model["ServiceCategory"] == "AI and Machine Learning"
    assert orjson.loads(model["Tags"])["cost_center"] == "cc_4102"
    share = next(r for r in data if r["x_SharedPool"] == "gpu_pool")
    assert share["x_CostType"] == "allocated" and share["ServiceName"] == "gpu_pool"
    assert share["ChargeDescription"].startswith("Share of shared cost gpu_pool (in proportion")
    rest = next(r for r in data if r["x_CostType"] == "unallocated")
    assert rest["ChargeDescription"].startswith("Unallocated remainder of shared_pool")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_cli_report_from_events_and_from_rollups(tmp_path: Path) -> None:
    events = month_events()
    events.append(
        {
            **events[0],
            "cost_event_id": "we-unpriced",
            "model_or_service": "in-house-llm-9",
            "allocated_cost_usd": None,
            "input_tokens": 10,
        }
    )
    events_file = write_jsonl(tmp_path / "events.jsonl", events)
    (tmp_path / "events.jsonl").open("ab").write(b"{not json\n")
    runner = CliRunner()
    args = ["--allocation", str(RULES), "--period", "month"]
    result = runner.invoke(
        main, ["report", "--events", str(events_file), *args, "--out", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    assert "1 unpriced events" in result.output
    csv = pcsv.read_csv(tmp_path / "a" / "chargeback_month.csv").to_pylist()
    parquet = pq.read_table(tmp_path / "a" / "chargeback_month.parquet").to_pylist()
    assert sum(r["BilledCost"] for r in csv) == pytest.approx(TOTAL)
    assert sum(r["BilledCost"] for r in parquet) == pytest.approx(TOTAL)
    assert sum(r["x_UnpricedEvents"] for r in parquet) == 1
    header, first = (tmp_path / "a" / "chargeback_month.csv").read_text().splitlines()[:2]
    column = header.split(",").index('"ChargePeriodStart"')
    assert first.split(",")[column] == '"2026-06-01T00:00:00Z"'  # ISO 8601, UTC
    # the same month from rollup records (what the worker publishes) gives the same report
    lines = [orjson.dumps(e) for e in events]
    rollups = rollups_from_events(lines, None).table.to_pylist()
    for r in rollups:
        r["hour_start"] = r["hour_start"].isoformat().replace("+00:00", "Z")
    half = len(rollups) // 2
    f1 = write_jsonl(tmp_path / "r1.jsonl", rollups[:half])
    f2 = write_jsonl(tmp_path / "r2.jsonl", rollups[half:])
    result = runner.invoke(
        main,
        [
            "report",
            "--rollups",
            str(f1),
            "--rollups",
            str(f2),
            *args,
            "--out",
            str(tmp_path / "b"),
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output
    again = pq.read_table(tmp_path / "b" / "chargeback_month.parquet").to_pylist()
    assert again == parquet
    assert not (tmp_path / "b" / "chargeback_month.csv").exists()


def test_cli_price_book_prices_replayed_events(tmp_path: Path) -> None:
    event = month_events()[0] | {
        "model_or_service": "in-house-llm-7",
        "input_tokens": 1_000_000,
        "output_tokens": 0,
    }
    event.pop("allocated_cost_usd")
    events_file = write_jsonl(tmp_path / "events.jsonl", [event])
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--events",
            str(events_file),
            "--price-book",
            str(EXAMPLES / "example_pricebook.yaml"),
            "--kind",
            "showback",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(tmp_path / "showback_month.parquet").to_pylist()
    assert [(r["BilledCost"], r["x_UnpricedEvents"]) for r in rows] == [(pytest.approx(0.3), 0)]


def test_cli_refuses_bad_rollups(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"hour_start": "2026-06-01T09:30:00Z", "tenant_id": "t", "use_case_id": "u",'
        ' "environment": "prod", "risk_tier": "low", "component": "gpu"}\n'
    )
    result = CliRunner().invoke(main, ["report", "--rollups", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not the start of an hour" in result.output
    bad.write_text(
        '{"hour_start": "2026-06-01T09:00:00Z", "tenant_id": "t", "use_case_id": "u",'
        ' "environment": "prod", "risk_tier": "low", "component": "gpu",'
        ' "cost_usd": -3}\n'
    )
    result = CliRunner().invoke(main, ["report", "--rollups", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "cost_usd has a negative value" in result.output
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "give --rollups FILE" in result.output


def test_replayed_events_are_deduplicated_and_bad_ones_counted() -> None:
    events = month_events()[:3]
    lines = [
        orjson.dumps({"envelope_version": 1, "events": [events[0], events[1], {"bad": 1}]}),
        orjson.dumps(events[0]),  # a producer's retry
        orjson.dumps(events[2]),
        b"{not json",
    ]
    replay = rollups_from_events(lines, None)
    assert (replay.accepted, replay.duplicates, replay.refused) == (3, 1, 2)
    assert sum(replay.table["events"].to_pylist()) == 3
