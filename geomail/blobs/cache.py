"""A worker's memory cache of attachment bytes, least recently used out first.

Reading an attachment back costs an S3 round trip, CPU on the S3 server and,
for base64 parts, re-encoding here; Dovecot reading a Maildir pays none of
this (its reads come from the kernel's page cache).  Mail clients read the
same recent messages again and again (a preview pane, the open message, a
sync, Thunderbird's 64 KiB partial fetches), so each worker keeps what it
rendered last, the way Dovecot's object-storage backend keeps a local cache
in front of S3.  ``geomail.reader`` keeps each attachment segment here as
it appears in the message (base64 already re-encoded).

Objects never change once stored (a key names one attachment of one
delivery, unique by its token, and is written once), so a cached copy is
never stale; a deleted object's entries are never asked for again and age
out.  Memory is bounded by ``--attachment-memory-cache-size``; behind it
sits the host's disk cache of whole objects (``geomail.blobs.diskcache``).
"""

import collections

MAX_ENTRY = 1536 * 1024     # a 1 MiB attachment in base64; larger ones stream, uncached


class AttachmentCache:
    """Bytes by a hashable key, at most ``budget`` bytes in all."""

    def __init__(self, budget):
        self.budget = max(0, int(budget))
        self.max_entry = min(MAX_ENTRY, self.budget // 8)
        self.used = 0
        self._entries = collections.OrderedDict()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def wants(self, size):
        """Would an entry of ``size`` bytes be kept?"""
        return 0 < size <= self.max_entry

    def get(self, key):
        data = self._entries.get(key)
        if data is not None:
            self._entries.move_to_end(key)
        return data

    def put(self, key, data):
        if not self.wants(len(data)):
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= len(old)
        self._entries[key] = data
        self.used += len(data)
        while self.used > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.used -= len(evicted)
