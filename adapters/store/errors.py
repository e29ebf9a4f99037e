"""Errors of the behavior store, each with a message a person can act on."""

from bot.behavior import BlobUnreadable, StoreUnavailable


class StoreError(Exception):
    """Base of every error the behavior store raises on purpose."""


class NotADatabaseError(StoreError):
    """PMG_DB_URL points at a file that is not SQLite; it is left untouched."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer pmg-stickers; it is left untouched."""


class UnsupportedDatabaseError(StoreError):
    """PMG_DB_URL is neither a SQLite file URL nor a PostgreSQL (asyncpg) one."""


class DatabaseUnavailableError(StoreError, StoreUnavailable):
    """The database server is down, unreachable, or refuses the login or the database name."""


class BlobTooLargeError(StoreError):
    """A file is larger than PMG_MAX_BLOB_BYTES."""


class UnknownUserError(StoreError):
    """No such user in the store."""


class BlobUnreadableError(StoreError, BlobUnreadable):
    """A blob's bytes are missing or do not match their hash."""
