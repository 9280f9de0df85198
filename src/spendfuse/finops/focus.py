"""Report rows as FOCUS 1.2 cost-and-usage columns, written as CSV and Parquet.

Every FOCUS 1.2 column is present, in the specification's order (columns that do not apply to
internal AI spend, such as commitment discounts or regions, are null); what FOCUS has no column
for is in ``x_`` columns. Internal prices are the only prices, so ``ListCost``,
``ContractedCost``, ``EffectiveCost`` and ``BilledCost`` are the same amount. Attribution is in
``Tags`` (a JSON object) and, for easy filtering, in ``x_BusinessUnit``, ``x_CostCenter``... The
tenant is the ``SubAccountId``; the use case is the ``ResourceId`` (``tenant/use_case``).
``x_CostType`` says whether a row is ``direct`` spend, an ``allocated`` share of a shared
cost (``x_SharedPool``), or a pool's ``unallocated`` remainder (``ChargeDescription`` says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

FOCUS_VERSION = "1.2"
_TS = pa.timestamp("ms", tz="UTC")
_S, _F, _I = pa.string(), pa.float64(), pa.int64()
FOCUS_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("AvailabilityZone", _S),
    ("BilledCost", _F),
    ("BillingAccountId", _S),
    ("BillingAccountName", _S),
    ("BillingAccountType", _S),
    ("BillingCurrency", _S),
    ("BillingPeriodEnd", _TS),
    ("BillingPeriodStart", _TS),
    ("CapacityReservationId", _S),
    ("CapacityReservationStatus", _S),
    ("ChargeCategory", _S),
    ("ChargeClass", _S),
    ("ChargeDescription", _S),
    ("ChargeFrequency", _S),
    ("ChargePeriodEnd", _TS),
    ("ChargePeriodStart", _TS),
    ("CommitmentDiscountCategory", _S),
    ("CommitmentDiscountId", _S),
    ("CommitmentDiscountName", _S),
    ("CommitmentDiscountQuantity", _F),
    ("CommitmentDiscountStatus", _S),
    ("CommitmentDiscountType", _S),
    ("CommitmentDiscountUnit", _S),
    ("ConsumedQuantity", _F),
    ("ConsumedUnit", _S),
    ("ContractedCost", _F),
    ("ContractedUnitPrice", _F),
    ("EffectiveCost", _F),
    ("InvoiceId", _S),
    ("InvoiceIssuerName", _S),
    ("ListCost", _F),
    ("ListUnitPrice", _F),
    ("PricingCategory", _S),
    ("PricingCurrency", _S),
    ("PricingCurrencyContractedUnitPrice", _F),
    ("PricingCurrencyEffectiveCost", _F),
    ("PricingCurrencyListUnitPrice", _F),
    ("PricingQuantity", _F),
    ("PricingUnit", _S),
    ("ProviderName", _S),
    ("PublisherName", _S),
    ("RegionId", _S),
    ("RegionName", _S),
    ("ResourceId", _S),
    ("ResourceName", _S),
    ("ResourceType", _S),
    ("ServiceCategory", _S),
    ("ServiceName", _S),
    ("ServiceSubcategory", _S),
    ("SkuId", _S),
    ("SkuMeter", _S),
    ("SkuPriceDetails", _S),
    ("SkuPriceId", _S),
    ("SubAccountId", _S),
    ("SubAccountName", _S),
    ("SubAccountType", _S),
    ("Tags", _S),
)
EXTRA_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("x_ReportKind", _S),
    ("x_Period", _S),
    ("x_CostType", _S),
    ("x_SharedPool", _S),
    ("x_AllocationMethod", _S),
    ("x_AllocationDriver", _S),
    ("x_AllocationShare", _F),
    ("x_BusinessUnit", _S),
    ("x_CostCenter", _S),
    ("x_UseCaseId", _S),
    ("x_Environment", _S),
    ("x_RiskTier", _S),
    ("x_Component", _S),
    ("x_Events", _I),
    ("x_UnpricedEvents", _I),
    ("x_InputTokens", _I),
    ("x_OutputTokens", _I),
    ("x_CachedTokens", _I),
    ("x_ReasoningTokens", _I),
    ("x_ApiCalls", _I),
    ("x_GpuSeconds", _F),
    ("x_RetryCost", _F),
)
REPORT_SCHEMA = pa.schema(
    [pa.field(n, t) for n, t in FOCUS_COLUMNS] + [pa.field(n, t) for n, t in EXTRA_COLUMNS],
    metadata={"focus_version": FOCUS_VERSION},
)
_TAG_DIMS = (
    "business_unit",
    "cost_center",
    "use_case_id",
    "environment",
    "risk_tier",
    "component",
    "provider",
    "model_or_service",
)
_GENERATIVE = frozenset({"model_call", "judge"})


def _quantity(row: dict[str, Any]) -> tuple[float | None, str | None]:
    """FOCUS ConsumedQuantity / ConsumedUnit of a direct row."""
    if row["cost_type"] != "direct":
        return None, None
    component = row["component"]
    if component == "gpu" or (component not in _GENERATIVE and row["gpu_seconds"]):
        return float(row["gpu_seconds"]), "GPU-Seconds"
    tokens = row["input_tokens"] + row["output_tokens"]
    if component in _GENERATIVE and tokens:
        return float(tokens), "Tokens"
    if row["api_calls"]:
        return float(row["api_calls"]), "Calls"
    return float(row["events"]), "Requests"


def _description(row: dict[str, Any]) -> str:
    where = row["use_case_id"] or row["cost_center"] or row["business_unit"] or row["tenant_id"]
    if row["cost_type"] == "direct":
        what = row["model_or_service"] or row["component"]
        return f"{row['component']} on {what}" + (f" for {where}" if where else "")
    if row["cost_type"] == "allocated":
        basis = f"in proportion to {row['driver']}" if row["driver"] else row["method"]
        return f"Share of shared cost {row['pool']} ({basis})" + (f" for {where}" if where else "")
    pool = row["pool"] or "shared_pool"
    return f"Unallocated remainder of {pool}: {row['reason']}"


def _service(row: dict[str, Any]) -> str:
    if row["cost_type"] == "direct":
        return row["model_or_service"] or row["component"]
    return row["pool"] or row["model_or_service"] or "unallocated shared cost"


def focus_table(
    rows: Sequence[dict[str, Any]],
    kind: str,
    period: str,
    billing_account_id: str = "spendfuse",
) -> pa.Table:
    """Map report rows to the FOCUS 1.2 + ``x_`` columns (:data:`REPORT_SCHEMA`)."""
    cols: dict[str, list[Any]] = {name: [] for name in REPORT_SCHEMA.names}
    constant = {
        "BillingAccountId": billing_account_id,
        "BillingAccountName": billing_account_id,
        "BillingAccountType": "Internal",
        "BillingCurrency": "USD",
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": billing_account_id,
        "PricingCategory": "Standard",
        "PricingCurrency": "USD",
        "ServiceCategory": "AI and Machine Learning",
        "x_ReportKind": kind,
        "x_Period": period,
    }
    for row in rows:
        values = {**constant, **_focus_values(row), **_extra_values(row)}
        for name, column in cols.items():
            column.append(values.get(name))
    return pa.table(cols, schema=REPORT_SCHEMA)


def _focus_values(row: dict[str, Any]) -> dict[str, Any]:
    """The FOCUS columns of one row that vary (the constant ones are set once per report)."""
    cost = round(row["cost_usd"], 10)
    quantity, unit = _quantity(row)
    tags = {d: row[d] for d in _TAG_DIMS if row.get(d) is not None}
    tenant, use_case = row["tenant_id"], row["use_case_id"]
    return {
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ContractedCost": cost,
        "PricingCurrencyEffectiveCost": cost,
        "BillingPeriodStart": row["period_start"],
        "BillingPeriodEnd": row["period_end"],
        "ChargePeriodStart": row["period_start"],
        "ChargePeriodEnd": row["period_end"],
        "ChargeDescription": _description(row),
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ProviderName": row["provider"] or "internal",
        "PublisherName": row["provider"],
        "ResourceId": f"{tenant or '-'}/{use_case}" if use_case else None,
        "ResourceName": use_case,
        "ResourceType": "AI use case" if use_case else None,
        "ServiceName": _service(row),
        "ServiceSubcategory": "Generative AI"
        if row["component"] in _GENERATIVE
        else "Other (AI and Machine Learning)",
        "SkuId": row["model_or_service"] if row["cost_type"] == "direct" else row["pool"],
        "SubAccountId": tenant,
        "SubAccountName": tenant,
        "SubAccountType": "Tenant" if tenant else None,
        "Tags": orjson.dumps(tags, option=orjson.OPT_SORT_KEYS).decode() if tags else None,
    }


def _extra_values(row: dict[str, Any]) -> dict[str, Any]:
    """The ``x_`` columns: attribution, allocation and usage FOCUS has no column for."""
    return {
        "x_CostType": row["cost_type"],
        "x_SharedPool": row["pool"],
        "x_AllocationMethod": row["method"],
        "x_AllocationDriver": row["driver"],
        "x_AllocationShare": row["share"],
        "x_BusinessUnit": row["business_unit"],
        "x_CostCenter": row["cost_center"],
        "x_UseCaseId": row["use_case_id"],
        "x_Environment": row["environment"],
        "x_RiskTier": row["risk_tier"],
        "x_Component": row["component"],
        "x_Events": row["events"],
        "x_UnpricedEvents": row["unpriced_events"],
        "x_InputTokens": row["input_tokens"],
        "x_OutputTokens": row["output_tokens"],
        "x_CachedTokens": row["cached_tokens"],
        "x_ReasoningTokens": row["reasoning_tokens"],
        "x_ApiCalls": row["api_calls"],
        "x_GpuSeconds": round(row["gpu_seconds"], 9),
        "x_RetryCost": round(row["retry_cost_usd"], 10),
    }


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def write_csv(table: pa.Table, path: Path) -> None:
    """CSV with FOCUS date-times as ISO 8601 UTC (``2026-11-01T00:00:00Z``)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = pc.cast(table.column(i), pa.timestamp("s", tz="UTC"))
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, field.name, text)
    pcsv.write_csv(table, path)
