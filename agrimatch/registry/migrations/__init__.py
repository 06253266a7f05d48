"""Alembic migrations of the registry database (run by ``agrimatch.registry.db.migrate``)."""
