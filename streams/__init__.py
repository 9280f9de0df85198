"""The streaming layer: thin Faust agents around the pure pipeline, and the notifiers.

The only package that imports faust and Kafka clients. Everything it decides, it decides by
calling :mod:`spendfuse.pipeline` and :mod:`spendfuse.rules`.
"""
