"""parse_addresses keeps short fields' results: a caller changing its list changes
nothing for the next caller, and long fields are parsed every time, as before."""

from geomail.mime.headers import _parse_addresses, parse_addresses


def test_each_caller_gets_its_own_list():
    field = b"Ann <ann@example.com>, bob@example.org"
    first = parse_addresses(field)
    first.append(("junk", None, None, None))
    assert parse_addresses(field) == _parse_addresses(field)
    assert len(parse_addresses(field)) == 2


def test_long_and_non_bytes_fields_are_parsed_the_same():
    long_field = b", ".join(b"user%d@example.com" % n for n in range(200))
    assert parse_addresses(long_field) == _parse_addresses(long_field)
    assert len(parse_addresses(long_field)) == 200
    assert parse_addresses(bytearray(b"a@b.c")) == _parse_addresses(b"a@b.c")
