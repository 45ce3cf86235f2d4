"""Durable customer journeys: the flow language, a pure engine and the runner around it."""

from jornada.flows.catalog import CATALOG, LoadedFlow, install
from jornada.flows.definition import FlowDocument
from jornada.flows.engine import advance
from jornada.flows.library import library_flows, load_flow_file
from jornada.flows.models import FlowRun, FlowRunStep, FlowVersion
from jornada.flows.runner import Runner

__all__ = [
    "CATALOG",
    "FlowDocument",
    "FlowRun",
    "FlowRunStep",
    "FlowVersion",
    "LoadedFlow",
    "Runner",
    "advance",
    "install",
    "library_flows",
    "load_flow_file",
]
