"""Alembic migrations of the behavior store (applied by `pmg db upgrade` and on start)."""
