"""CPython's email test corpus, CRLF line endings, whole and in random chunks."""

import glob
import os
import random

import pytest

from mime_helpers import CORPUS, check_attachments, check_roundtrip, crlf, parse, random_chunks


def corpus_files():
    files = sorted(glob.glob(os.path.join(CORPUS, "msg_*.txt")))
    return files


def test_corpus_is_present():
    # never skip silently: the corpus ships with CPython's test package
    assert os.path.isdir(CORPUS), CORPUS
    assert len(corpus_files()) >= 40


@pytest.mark.parametrize("path", corpus_files(), ids=os.path.basename)
def test_corpus_message(path):
    with open(path, "rb") as f:
        data = crlf(f.read())
    parsed, sink = parse(data)
    check_roundtrip(data, parsed, sink)
    check_attachments(data, parsed, sink)
    whole = (parsed.raw, parsed.segments_json(), parsed.bodystructure, parsed.envelope)
    rng = random.Random(os.path.basename(path))
    for hi in (1, 7, 64, 1000):
        p2, s2 = parse(data, random_chunks(rng, 1, hi))
        check_roundtrip(data, p2, s2, rng, ranges=5)
        check_attachments(data, p2, s2)
        assert (p2.raw, p2.segments_json(), p2.bodystructure, p2.envelope) == whole
