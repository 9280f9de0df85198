"""Online anomaly detectors."""
