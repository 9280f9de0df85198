"""FinOps economics: price book loading, hourly rollups, shared-cost allocation, showback and
chargeback reports in FOCUS columns, and the outcome ledger.

Pure: no Kafka, no Faust (import-linter holds it to that). The CLI (``spendfuse report``) and
the worker bring the I/O.
"""

from spendfuse.finops.allocation import AllocationRules, load_allocation_rules
from spendfuse.finops.errors import ConfigFileError, FinopsError, RollupInputError
from spendfuse.finops.outcomes import OutcomeLedger, OutcomeSummary
from spendfuse.finops.pricebook import load_price_book
from spendfuse.finops.rollups import RollupAccumulator

__all__ = [
    "AllocationRules",
    "ConfigFileError",
    "FinopsError",
    "OutcomeLedger",
    "OutcomeSummary",
    "RollupAccumulator",
    "RollupInputError",
    "load_allocation_rules",
    "load_price_book",
]
