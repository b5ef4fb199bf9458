"""The PREVIEW of a message (RFC 8970 §2): a short plain-text start of its text.

At most PREVIEW_CHARS characters of the first text part, whitespace runs
collapsed to one space; an HTML-only message is stripped of its tags (and of
<style>/<script> content) and its entities are decoded.  No text gives None
(PREVIEW NIL).  Work is bounded whatever the input: at most SCAN_CHARS of
each text are looked at, in one linear pass without regular expressions.
"""

import html

PREVIEW_CHARS = 256          # RFC 8970 §2: "no more than 256 characters"
SCAN_CHARS = 64 * 1024       # text read to find them (an HTML head can be long)
_SKIPPED_ELEMENTS = ("style", "script", "head", "title")


def preview_of(text_plain, text_html):
    """The preview text, or None when the message has no text to show."""
    if text_plain and text_plain.strip():
        return _collapse(text_plain[:SCAN_CHARS]) or None
    if text_html:
        return _collapse(html_text(text_html[:SCAN_CHARS])) or None
    return None


def _collapse(text):
    """Whitespace runs (and control characters) become one space; cut to PREVIEW_CHARS.

    Most texts start with printable words: then str.split and join over a
    window of the text give the same in C (split cuts at exactly the
    characters isspace() calls space), and the window holds enough when what
    it gives is PREVIEW_CHARS long; else the loop below, character by character.
    """
    window = " ".join(text[:4 * PREVIEW_CHARS].split())
    if len(window) >= PREVIEW_CHARS and window.isprintable():
        return window[:PREVIEW_CHARS]
    return _collapse_slowly(text)


def _collapse_slowly(text):
    out, length, space = [], 0, False
    for char in text:
        if char.isspace() or not char.isprintable():
            space = bool(out)
            continue
        if space:
            out.append(" ")
            length += 1
            space = False
        if length >= PREVIEW_CHARS:
            break
        out.append(char)
        length += 1
    return "".join(out)[:PREVIEW_CHARS]


def html_text(markup):
    """The text of HTML: tags dropped (a block-level break as a space), entities decoded."""
    pieces = []
    i, n = 0, len(markup)
    while i < n:
        lt = markup.find("<", i)
        if lt < 0:
            pieces.append(markup[i:])
            break
        pieces.append(markup[i:lt])
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = markup.find(">", lt + 1)
        if gt < 0:
            break
        name = _tag_name(markup, lt + 1, gt)
        i = gt + 1
        if name in _SKIPPED_ELEMENTS:
            i = _closing(markup, name, i)
        pieces.append(" ")
    return html.unescape("".join(pieces))


def _tag_name(markup, start, end):
    j = start
    while j < end and (markup[j].isalnum()):
        j += 1
    return markup[start:j].lower()


def _closing(markup, name, start):
    """Where ``</name`` (any case) begins at or after start, else the end: each
    position is looked at once, so the scan stays linear."""
    i = start
    while True:
        i = markup.find("</", i)
        if i < 0:
            return len(markup)
        if markup[i + 2:i + 2 + len(name)].lower() == name:
            return i
        i += 2
