"""Metrics: what each flow earns (funnel, attributed revenue, uplift over the holdout)."""

from jornada.metrics.attribution import AttributionWindow, attribute
from jornada.metrics.queries import flow_stats, flows_overview
from jornada.metrics.uplift import Uplift, uplift

__all__ = ["AttributionWindow", "Uplift", "attribute", "flow_stats", "flows_overview", "uplift"]
