"""Reading a stored message back, byte for byte (docs/DESIGN.md "Byte-exact messages").

A stored message is its trace headers (per message row) followed by the
content rebuilt from MySQL (``raw`` + ``segments``) and S3 (attachment
bodies, re-encoded where the parser proved it exact).  Two caches sit in
front of S3: the worker's memory cache of rendered segments
(``geomail.blobs.cache``), then the host's disk cache of objects
(``geomail.blobs.diskcache``).  ``StoredMessage.read``
streams any byte range, fetching only the attachment ranges it needs, chunk
by chunk; the whole message is never in memory.
"""

from geomail.mime.rebuild import rebuild, render_segment
from geomail.mime.segments import RAW, segments_from_json
from geomail.store.contents import load_content


class StoredMessage:
    """trace headers + content, addressable by byte offsets of the whole."""

    def __init__(self, context, trace_headers, content):
        self.context = context
        self.trace = bytes(trace_headers or b"")
        self.content = content
        self.size = len(self.trace) + content["size"]
        self.cache = getattr(context, "attachment_cache", None)
        self.files = getattr(context, "attachment_files", None)
        self._segments = None

    @classmethod
    def load(cls, context, content_id, trace_headers=b""):
        content = load_content(context.db, content_id)
        if content is None:
            raise LookupError(f"message content {content_id} does not exist")
        return cls(context, trace_headers, content)

    def read(self, start=0, end=None):
        """Yield the bytes of [start, end) of the message (end None: to the end)."""
        end = self.size if end is None else min(end, self.size)
        if start >= end:
            return
        trace_len = len(self.trace)
        if start < trace_len:
            yield self.trace[start:min(end, trace_len)]
        if end > trace_len:
            yield from rebuild(self.segments, self.content["raw"], self.read_attachment,
                               max(0, start - trace_len), end - trace_len,
                               self.segment_bytes if self.cache is not None else None)

    @property
    def segments(self):
        if self._segments is None:
            self._segments = segments_from_json(self.content["segments"])
        return self._segments

    def _cache_key(self, seg):
        entry = self.content["attachments"][seg.index]
        return (entry["bucket"], entry["key"], seg.kind, seg.dstart, seg.dend, seg.line, seg.eol)

    def segment_bytes(self, seg):
        """A whole attachment segment from the worker's cache (filled here on a miss),
        or None when it is too large to be cached."""
        if not self.cache.wants(seg.length):
            return None
        key = self._cache_key(seg)
        data = self.cache.get(key)
        if data is None:
            data = render_segment(seg, self.read_attachment)
            self.cache.put(key, data)
        return data

    def cached(self, index):
        """Is every segment of attachment ``index`` in the cache already?"""
        if self.cache is None:
            return False
        return all(self._cache_key(seg) in self.cache for seg in self.segments
                   if seg.kind != RAW and seg.index == index)

    def read_attachment(self, index, start, end):
        """Decoded bytes [start, end) of attachment index: from the host's disk cache
        when it holds an intact copy, else streamed from S3."""
        if start >= end:
            return iter(())
        entry = self.content["attachments"][index]
        store = self.context.blobs_for(entry["bucket"])
        if self.files is None:
            return store.get_range(entry["key"], start, end)
        return self.files.read_through(store, entry["bucket"], entry["key"], entry.get("sha256"),
                                       int(entry["size"]), start, end)

    def bytes(self, start=0, end=None):
        """The range as one bytes object (for small ranges and tests)."""
        return b"".join(self.read(start, end))
