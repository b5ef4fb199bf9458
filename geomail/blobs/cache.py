"""A worker's memory cache of small attachment objects, least recently used out first.

Reading an attachment back from S3 costs a round trip and, on the S3
server, far more CPU than reading a Maildir file costs Dovecot (whose
reads come from the kernel's page cache).  Mail clients read the same
recent messages again and again (a preview pane, then the open message,
then a sync), so each worker keeps the small objects it read last, the way
Dovecot's object-storage backend keeps a local cache in front of S3.

Objects never change once stored (a key names one attachment of one
delivered message and is written once), so a cached copy is never stale;
deleting through the worker's BlobStore drops it from the cache, and an
object deleted by another worker is never asked for again (nothing refers
to it any more).  Memory is bounded by ``--attachment-cache-size``.
"""

import collections

MAX_OBJECT = 1024 * 1024     # larger objects are streamed, never cached


class ObjectCache:
    """Whole objects by (bucket, key), at most ``budget`` bytes in all."""

    def __init__(self, budget):
        self.budget = max(0, int(budget))
        self.max_object = min(MAX_OBJECT, self.budget // 8)
        self.used = 0
        self._objects = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._objects)

    def wants(self, size):
        """Would an object of ``size`` bytes be kept?"""
        return 0 < size <= self.max_object

    def get(self, bucket, key):
        data = self._objects.get((bucket, key))
        if data is None:
            self.misses += 1
            return None
        self._objects.move_to_end((bucket, key))
        self.hits += 1
        return data

    def __contains__(self, bucket_key):
        return bucket_key in self._objects

    def put(self, bucket, key, data):
        if not self.wants(len(data)):
            return
        data = bytes(data)
        old = self._objects.pop((bucket, key), None)
        if old is not None:
            self.used -= len(old)
        self._objects[(bucket, key)] = data
        self.used += len(data)
        while self.used > self.budget:
            _, evicted = self._objects.popitem(last=False)
            self.used -= len(evicted)

    def discard(self, bucket, keys):
        for key in keys:
            data = self._objects.pop((bucket, key), None)
            if data is not None:
                self.used -= len(data)
