"""The preview's fast path (str.split over a window) gives what the character loop gives."""

import random

from geomail.mime.preview import PREVIEW_CHARS, _collapse, _collapse_slowly

ALPHABET = "ab XY\t\r\n\u00a0\u2028\u3000\x00\x1f\u200bé."


def test_fast_path_equals_the_loop_on_random_texts():
    rng = random.Random(13)
    for _ in range(3000):
        size = rng.choice([0, 10, PREVIEW_CHARS - 1, PREVIEW_CHARS, PREVIEW_CHARS + 1, 1100, 5000])
        text = "".join(rng.choice(ALPHABET if rng.random() < 0.5 else "ab \r\n")
                       for _ in range(size))
        assert _collapse(text) == _collapse_slowly(text), repr(text)


def test_fast_path_at_the_window_edge():
    for cut in range(4 * PREVIEW_CHARS - 5, 4 * PREVIEW_CHARS + 5):
        text = " " * cut + "word " * 100
        assert _collapse(text) == _collapse_slowly(text)
        text = "x" * cut + "   " + "y" * 300
        assert _collapse(text) == _collapse_slowly(text)


def test_smtp_source_body():
    text = "".join(f"{n}" + "X" * 78 + "\n" for n in range(1, 50))
    assert _collapse(text) == _collapse_slowly(text)
    assert len(_collapse(text)) == PREVIEW_CHARS
