"""geomail.mime.preview: the RFC 8970 preview text, bounded work on hostile input."""

import time

from geomail.mime.preview import PREVIEW_CHARS, html_text, preview_of


def test_plain_wins_and_whitespace_collapses():
    assert preview_of(" a\r\n\r\n b\x00\tc ", "<p>html</p>") == "a b c"
    assert preview_of("   \r\n", "<p>only &lt;html&gt;</p>") == "only <html>"
    assert preview_of("", "") is None and preview_of(None, None) is None
    assert preview_of("", "<style>x</style><script>y</script>") is None


def test_html_comments_unclosed_tags_and_skipped_elements():
    assert html_text("a<!-- <b>no</b> -->b") == "ab"
    assert html_text("a<!-- never closed") == "a"
    assert html_text("a<b") == "a"
    assert preview_of("", "<STYLE>x</Style>after") == "after"
    assert preview_of("", "<head><title>t</title></head><body>body</body>") == "body"


def test_cut_to_256_characters():
    assert len(preview_of("\u00e9" * 1000, None)) == PREVIEW_CHARS
    assert preview_of("x " * 1000, None) == ("x " * 128)[:PREVIEW_CHARS]


def test_hostile_input_is_linear():
    started = time.monotonic()
    for markup in ("<style>" * 200_000, "</s" * 300_000, "<" * 1_000_000, "<!--" * 250_000):
        preview_of("", markup)
    preview_of(" " * 5_000_000 + "x", None)
    assert time.monotonic() - started < 2
