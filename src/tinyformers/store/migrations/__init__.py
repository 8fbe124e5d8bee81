"""Alembic migrations of the store's tables, run by ``store.db.open_store``."""
