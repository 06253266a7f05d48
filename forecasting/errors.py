"""The forecasting domain's errors. Imports nothing: any layer may raise or catch them
without loading a scheduler, a database driver or a model library."""

from __future__ import annotations


class JobCannotRun(RuntimeError):
    """The job cannot run as of its date, for a reason its message gives in full
    (too little history, nothing in season): recorded and logged without a traceback."""


class ChainError(JobCannotRun):
    """The chain cannot run as of this date (e.g. no harvested season to learn from)."""


class InvalidRequest(ValueError):
    """What was asked of a service is wrong (an unknown crop, a bad date); the message
    names the fix. Raised before any model runs."""
