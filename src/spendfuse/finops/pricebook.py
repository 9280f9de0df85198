"""Load the price book file (the model and its prices are in :mod:`spendfuse.schemas.pricebook`)."""

from __future__ import annotations

from pathlib import Path

from spendfuse.finops.yamlfile import load_yaml_model
from spendfuse.schemas.pricebook import PriceBook


def load_price_book(path: Path) -> PriceBook:
    """Read and validate a YAML price book; raise ``ConfigFileError`` with located problems."""
    return load_yaml_model(path, PriceBook)
