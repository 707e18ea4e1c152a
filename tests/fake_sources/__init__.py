"""Socrata- and ArcGIS-compatible test server and test rows in each publication's raw shape."""
from .server import FakeServer

__all__ = ["FakeServer"]
