"""Any blob store, with each request's latency and failures counted for /metrics.

``open_blob_store`` hands this wrapper out, so S3 and the local directory are
measured alike and neither backend carries metrics code.  Only the calls in
OPERATIONS are timed (for a streaming GET, the time to the first byte);
every other attribute is the wrapped store's own.
"""

from geomail import metrics

OPERATIONS = frozenset({
    "put", "get", "get_range", "delete", "remove", "exists", "list_keys", "list_objects",
    "list_multipart_uploads", "open_uploads", "open_upload", "create_upload", "upload_part",
    "complete_upload", "abort_upload", "ensure_bucket",
})


class TimedBlobStore:
    def __init__(self, store):
        self._store = store

    @property
    def wrapped(self):
        return self._store

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if name not in OPERATIONS:
            return value
        counters = metrics.get()
        seconds = counters.blob_seconds.labels(name)
        errors = counters.blob_errors.labels(name)

        def timed(*args, **kwargs):
            try:
                with metrics.timer(seconds):
                    return value(*args, **kwargs)
            except Exception:
                errors.inc()
                raise
        timed.__name__ = name
        return timed
