"""``python -m agrimatch`` runs the CLI."""

from agrimatch.cli import app

app()
