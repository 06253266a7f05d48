"""The FastAPI app: routers per audience (devices, agronomists, platforms)."""
