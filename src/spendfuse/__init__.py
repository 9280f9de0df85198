"""spendfuse: catch runaway AI spend in seconds."""

__version__ = "0.1.0"
