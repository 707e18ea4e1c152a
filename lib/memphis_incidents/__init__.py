"""memphis-incidents: MPD Public Safety Incidents from source to warehouse, marts and report."""

__version__ = "0.1.0"
