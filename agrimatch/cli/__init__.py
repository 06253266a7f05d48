"""The ``agrimatch`` command line: the composition root.

This is the one place in the kernel that wires services (ingest, the
simulator, later the API and the forecaster) together.
"""

from agrimatch.cli.app import app

__all__ = ["app"]
