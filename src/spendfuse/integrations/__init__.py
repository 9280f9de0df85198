"""Integrations with AI gateways and clients people run (optional extras)."""
