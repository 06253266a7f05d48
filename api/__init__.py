"""The FastAPI app: routers per audience (devices, agronomists, platforms, operators).

Public face: :func:`create_app` (``api.main``). Layout as the FastAPI
full-stack template's: ``deps.py`` (dependencies as typed aliases),
``routes/`` (one module per resource), ``schemas/`` (request and response
models apart from the registry's tables), ``errors.py`` (RFC 9457 problems).
"""

from api.main import create_app

__all__ = ["create_app"]
