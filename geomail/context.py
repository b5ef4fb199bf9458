"""What every session of a worker shares: configuration, storage, the session table."""

import logging

log = logging.getLogger("geomail.context")


class ServerContext:
    """Holds the worker's database pool and blob store (both created after fork), and
    the committer its SMTP sessions' deliveries share transactions through."""

    def __init__(self, config, db, blobs, worker=None):
        self.config = config
        self.db = db
        self.attachment_cache = _attachment_cache(config)      # this worker's, in memory
        self.attachment_files = _disk_cache(config)            # the host's, on disk
        self.blobs = self._writing_through(blobs)
        self.worker = worker
        self.tls_context = server_tls_context(config)
        self.upload_budget = _budget(config)
        self.committer = _committer(db)
        self._mailbox_listeners = []
        self._other_buckets = {}

    @classmethod
    def create(cls, config, worker=None):
        from geomail.store.open import open_database
        db = open_database(config, config.db_pool_size)
        return cls(config, db, blob_store(config), worker)

    @property
    def hostname(self):
        return self.config.hostname

    def register(self, session):
        if self.worker is not None:
            self.worker.sessions.add(session)

    def unregister(self, session):
        if self.worker is not None:
            self.worker.sessions.discard(session)

    def blobs_for(self, bucket):
        """The S3 client of a bucket: the configured one, or (objects stored before a
        change of --oss-bucket) one made once per other bucket and kept."""
        if bucket == self.blobs.bucket:
            return self.blobs
        if bucket not in self._other_buckets:
            self._other_buckets[bucket] = self._writing_through(blob_store(self.config, bucket))
        return self._other_buckets[bucket]

    def _writing_through(self, store):
        """store, or with the disk cache on, store writing its objects through to it."""
        if self.attachment_files is None:
            return store
        from geomail.blobs.writethrough import WriteThroughStore
        return WriteThroughStore(store, self.attachment_files)

    def warm_up(self):
        """Use the database, the blob store and the resolver once, so their lazily
        imported code is loaded.

        Called before a worker gives up root: afterwards it may not be able
        to read the Python library (a Python installed under /root, say).
        """
        import socket
        socket.getaddrinfo("localhost", 25)
        try:
            self.db.ping()
            self.blobs.ensure_bucket(create=False)
        except Exception as exc:  # storage down now: sessions will answer 4xx, not crash
            log.warning("warm-up of storage clients failed: %s", exc)

    def on_mailbox_change(self, callback):
        """callback(mailbox_ids) runs after this worker stores into those mailboxes."""
        self._mailbox_listeners.append(callback)

    def mailbox_changed(self, mailbox_ids):
        """Wake this worker's sessions at once (other workers learn it by polling MySQL)."""
        for callback in list(self._mailbox_listeners):
            try:
                callback(mailbox_ids)
            except Exception:
                log.exception("mailbox change listener failed")

    @property
    def stopping(self):
        return self.worker is not None and not self.worker.alive

    def close(self):
        try:
            self.db.close()
        except Exception:  # closing at exit: nothing left to do about it
            log.debug("closing the database pool failed", exc_info=True)


def blob_store(config, bucket=None):
    """The blob store for this process (S3 or the local directory): see geomail.blobs.open."""
    from geomail.blobs.open import open_blob_store
    return open_blob_store(config, bucket)


def _attachment_cache(config):
    """The worker's AttachmentCache, or None when --attachment-memory-cache-size is 0."""
    from geomail.blobs.cache import AttachmentCache
    cache = AttachmentCache(getattr(config, "attachment_memory_cache_size", 0))
    return cache if cache.budget else None


def _disk_cache(config):
    """The host's attachment DiskCache (--attachment-cache-dir), or None."""
    from geomail.blobs.diskcache import open_disk_cache
    return open_disk_cache(config)


def _budget(config):
    from geomail.blobs.pipelined import ByteBudget
    return ByteBudget(getattr(config, "upload_buffer_budget", 256 * 1024 * 1024))


def _committer(db):
    """The worker's SMTP group commit (geomail/smtp/committer.py): transactions
    overlap on MySQL (IN_FLIGHT), one at a time on SQLite, which has one writer."""
    from geomail.smtp.committer import IN_FLIGHT, Committer
    from geomail.store import dialect
    return Committer(IN_FLIGHT if dialect.of(db).scripts else 1)


def server_tls_context(config):
    """The TLS context for STARTTLS and implicit-TLS ports, or None without a certificate."""
    if not getattr(config, "tls_cert", ""):
        return None
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context
