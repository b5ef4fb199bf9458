"""Incremental MIME parsing for byte-exact storage.

See docs/DESIGN.md "Delivery" and "Byte-exact messages".

    parser = MessageParser(sink)          # sink.open(AttachmentInfo) -> writer
    for chunk in chunks: parser.feed(chunk)
    parsed = parser.close()               # ParsedMessage
    b"".join(rebuild(parsed, parsed.raw, read_attachment)) == the message
"""

from .parser import AttachmentInfo, MessageParser, ParsedMessage, Part, safe_filename
from .rebuild import rebuild, total_size
from .segments import Segment, segments_from_json, segments_to_json
from .imap import imap_string

__all__ = ["AttachmentInfo", "MessageParser", "ParsedMessage", "Part", "Segment",
           "imap_string", "rebuild", "safe_filename", "segments_from_json",
           "segments_to_json", "total_size"]
