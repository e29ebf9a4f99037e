"""Alembic revisions of the behavior store."""
