"""``spendfuse demo``: a local broker, the worker and its dashboard, and simulated traffic in
which a runaway agent loop is caught, degraded and stopped, all from one command."""
