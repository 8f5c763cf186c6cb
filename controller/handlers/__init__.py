"""The imperative shell: kopf handlers that observe, ask the planner, act, and record."""

from controller.handlers import accounts, positions, sweep

__all__ = ["accounts", "positions", "sweep"]
