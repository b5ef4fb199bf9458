"""Checks run once before the first worker starts (in a child of the master).

Applies pending schema migrations under the migration lock and makes sure
the attachment bucket exists.  Raising an exception with a clear message is
the way to refuse to start.
"""


def run(config):
    from geomail.context import blob_store, server_tls_context
    from geomail.store.database import Database
    from geomail.store.migrations.migrate import migrate

    try:
        server_tls_context(config)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot load --tls-cert/--tls-key: {exc}") from None
    db = Database(config.db_url, 1)
    try:
        migrate(db)
    finally:
        db.close()
    blob_store(config).ensure_bucket(create=config.oss_create_bucket)
