"""geomail.passwords: scrypt hashes, never plain text."""

from geomail.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_not_the_password_and_verifies():
    stored = hash_password("correct horse")
    assert "correct horse" not in stored
    assert stored.startswith("$scrypt$ln=14,r=8,p=1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not needs_rehash(stored)


def test_salted():
    assert hash_password("same") != hash_password("same")


def test_unicode_normalised():
    stored = hash_password("caf\u00e9")  # precomposed
    assert verify_password("cafe\u0301", stored)  # combining accent, same text


def test_null_and_malformed_never_verify():
    for stored in (None, "", "plain", "$scrypt$", "$scrypt$ln=14,r=8,p=1$@@@$@@@",
                   "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        assert verify_password("anything", stored) is False
    assert verify_password(None, hash_password("x")) is False
