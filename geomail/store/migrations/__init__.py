"""Versioned schema migrations (``NNNN_name.sql``) and the code that applies them."""

from geomail.store.migrations.migrate import (  # noqa: F401
    MigrationError, available_migrations, check_version, current_version, latest_version, migrate)
