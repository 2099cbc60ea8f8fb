"""Loopback AccessLink v3 simulator: deterministic personas, planted events, faults and rate limits.

``create_app(SimulatorConfig(...))`` returns a plain ASGI app (stdlib only) to run under any ASGI server.
Admin endpoints under ``/sim/*`` move the clock, inject faults and expose the ground truth.
"""

from polar_pipeline.simulator.app import SimulatorApp, create_app
from polar_pipeline.simulator.config import FaultConfig, SimulatorConfig

__all__ = ["FaultConfig", "SimulatorApp", "SimulatorConfig", "create_app"]
