"""agrimatch kernel: settings, clock, the message contract and storage ports.

The kernel imports no service package (ingest, forecasting, api, firmware_sim);
only :mod:`agrimatch.cli`, the composition root, wires them together.
"""

__version__ = "0.1.0"
