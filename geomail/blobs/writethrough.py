"""Any blob store, with the objects it stores also kept in the host's disk cache.

``geomail.blobs.diskcache`` explains the cache.  This wrapper is where it is
filled at delivery: a ``put`` that S3 accepted writes the same bytes to the
cache (S3 first, so the cache never holds what S3 refused), and ``delete``
and ``remove`` (an aborted delivery, EXPUNGE, the janitor) forget them.
Multipart objects (``--oss-multipart-threshold`` and up, 8 MiB by default)
are larger than the cache keeps by default; a smaller threshold leaves them
to the first read.  Every other attribute is the wrapped store's own.
"""


class WriteThroughStore:
    def __init__(self, store, cache):
        self._store = store
        self.cache = cache

    @property
    def wrapped(self):
        return self._store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __repr__(self):
        return f"WriteThroughStore({self._store!r}, {self.cache!r})"

    def put(self, key, data):
        self._store.put(key, data)
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.cache.write(self._store.bucket, key, data)

    def delete(self, keys):
        keys = list(keys)
        self._store.delete(keys)
        for key in keys:
            self.cache.discard(self._store.bucket, key)

    def remove(self, key):
        self._store.remove(key)
        self.cache.discard(self._store.bucket, key)
