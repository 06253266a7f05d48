"""The fault suite (``pytest -m faults``): faults injected under steady load on real servers."""
