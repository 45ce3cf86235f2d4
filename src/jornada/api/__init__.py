"""The HTTP surface: Segment-compatible ingestion and the admin API."""

from jornada.api.app import create_app

__all__ = ["create_app"]
