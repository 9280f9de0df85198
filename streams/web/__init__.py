"""The worker's web face: the dashboard page and its JSON, Prometheus ``/metrics``, health.

Views are thin: they read :class:`spendfuse.dashboard_state.DashboardState` and
:class:`spendfuse.streams.metrics.SpendfuseMetrics`. The page's static files (and the vendored
uPlot build) live in ``static/``.
"""

from spendfuse.streams.web.wiring import attach_operator_web

__all__ = ["attach_operator_web"]
