"""Alembic migrations of the gateway's schema; run them with ``voicegate db upgrade``
or :func:`gateway.db.migrate.upgrade`. Packaged with the code (``script_location =
gateway:migrations``), so they work from an installed wheel, no ``alembic.ini`` needed."""
