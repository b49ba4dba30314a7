"""Optimal-taxation environment: pure schedule/utility/planner modules plus the engine env.

Only the light schedule helpers are re-exported; ``environments.taxation.env`` (which pulls
in the engine and agents) is imported lazily by the registry.
"""
from environments.taxation.schedule import TaxSchedule, bracket_tax, us_federal_2018

__all__ = ["TaxSchedule", "bracket_tax", "us_federal_2018"]
