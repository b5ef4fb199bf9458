"""Open the configured database: MySQL for --db-url, else SQLite in --data-dir.

The only place that chooses the backend of the store; callers get an object
with Database's methods (connection, transaction, cursor, run_transaction,
ping, close) whichever it is.
"""

import os

from geomail.config import backend

SQLITE_FILE = "geomail.sqlite3"


def database_path(config):
    """The embedded store's SQLite file."""
    return os.path.join(config.data_dir, SQLITE_FILE)


def open_database(config, pool_size):
    """A Database (MySQL) or SQLiteDatabase for ``config``; connects lazily."""
    if backend(config) == "mysql":
        from geomail.store.database import Database
        return Database(config.db_url, pool_size)
    from geomail.store.sqlite import SQLiteDatabase
    return SQLiteDatabase(database_path(config), pool_size)
