"""The SQLite behavior store (SQLAlchemy 2 async + aiosqlite) and its content-addressed blobs."""

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.errors import StoreError

__all__ = ["SqlBehaviorStore", "StoreError"]
