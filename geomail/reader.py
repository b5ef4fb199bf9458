"""Reading a stored message back, byte for byte (docs/DESIGN.md "Byte-exact messages").

A stored message is its trace headers (per message row) followed by the
content rebuilt from MySQL (``raw`` + ``segments``) and S3 (attachment
bodies, re-encoded where the parser proved it exact).  Two caches sit in
front of S3: the worker's memory cache of rendered segments
(``geomail.blobs.cache``), then the host's disk cache of objects and of
their base64 segments as they appear in the message (``geomail.blobs.diskcache``,
wire forms: kept at delivery, or rendered once per host).  ``StoredMessage.read``
streams any byte range, fetching only the attachment ranges it needs, chunk
by chunk; the whole message is never in memory.
"""

from geomail.mime.rebuild import rebuild, render_segment
from geomail.mime.segments import BASE64, RAW, segments_from_json
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
        if end <= trace_len:
            return
        raw = self.content["raw"]
        if len(raw) == self.content["size"]:        # held whole in raw: no segments to walk
            yield raw if start <= trace_len and end == self.size else \
                raw[max(0, start - trace_len):end - trace_len]
        else:
            cached = self.cache is not None or self.files is not None
            yield from rebuild(self.segments, raw, self.read_attachment,
                               max(0, start - trace_len), end - trace_len,
                               self.segment_bytes if cached else None)

    @property
    def segments(self):
        if self._segments is None:
            self._segments = segments_from_json(self.content["segments"])
        return self._segments

    def _cache_key(self, seg):
        entry = self.content["attachments"][seg.index]
        return (entry["bucket"], entry["key"], seg.kind, seg.dstart, seg.dend, seg.line, seg.eol)

    def segment_bytes(self, seg):
        """A whole attachment segment from the worker's memory cache, else from the host's
        disk cache (a base64 segment as rendered before), else rendered (and kept in
        both); None when it is too large to be cached, or an identity segment with no
        memory cache (read from the object as it is)."""
        memory = self.cache if self.cache is not None and self.cache.wants(seg.length) else None
        if memory is not None:
            key = self._cache_key(seg)
            data = memory.get(key)
            if data is not None:
                return data
        if self._keeps_wire(seg):
            data = self._wire_bytes(seg)
        elif memory is not None:
            data = render_segment(seg, self.read_attachment)
        else:
            return None
        if memory is not None:
            memory.put(key, data)
        return data

    def _keeps_wire(self, seg):
        return seg.kind == BASE64 and self.files is not None and self.files.wants(seg.length)

    def _wire_bytes(self, seg):
        """A base64 segment from its wire-form file, or rendered from the object and kept."""
        entry = self.content["attachments"][seg.index]
        form = wire_form(seg)
        data = self.files.read_wire(entry["bucket"], entry["key"], form)
        if data is None:
            data = render_segment(seg, self.read_attachment)
            # kept only when rendered from the checked copy on disk: S3 bytes that failed
            # their sha256 are sent, but kept in no form (DiskCache.read_through)
            if self.files.holds(entry["bucket"], entry["key"]):
                self.files.write_wire(entry["bucket"], entry["key"], form, data)
        return data

    def cached(self, index):
        """Can attachment ``index`` be sent without a round trip to the blob store (its
        segments in the memory cache, or the object or its wire forms on disk)?"""
        segments = [seg for seg in self.segments if seg.kind != RAW and seg.index == index]
        if self.cache is not None and all(self._cache_key(seg) in self.cache
                                           for seg in segments):
            return True
        if self.files is None:
            return False
        entry = self.content["attachments"][index]
        forms = [wire_form(seg) for seg in segments if self._keeps_wire(seg)]
        if len(forms) < len(segments):
            forms = ()
        return self.files.holds(entry["bucket"], entry["key"], forms)

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


def wire_form(seg):
    """The disk cache's name for a base64 segment's rendering: line length, final CRLF
    or none, decoded range (everything its bytes depend on besides the object)."""
    return "b%d%s%d-%d" % (seg.line, "e" if seg.eol else "n", seg.dstart, seg.dend)
