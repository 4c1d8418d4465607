"""Persistence: the database connection, the tables, the store and migrations."""

from gateway.db.database import Database, DatabaseError
from gateway.db.models import metadata, new_id

__all__ = ["Database", "DatabaseError", "metadata", "new_id"]
