"""Password hashing: scrypt, never plain text.

Stored form: ``$scrypt$ln=14,r=8,p=1$<base64 salt>$<base64 hash>`` (base64
without padding). The parameters travel with each hash, so raising the cost
later only needs ``needs_rehash`` at the next successful login.

One hash costs about 16 MiB and tens of milliseconds of CPU. hashlib releases
the GIL while hashing, so a gevent worker may run it in its thread pool
(``gevent.get_hub().threadpool.apply``) to keep other sessions responsive.
"""

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata

LOG2_N = 14
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
PREFIX = "$scrypt$"

# Bounds on parameters read back from the database: a corrupted or hostile
# row must not make one login cost gigabytes.
_MAX_LOG2_N, _MAX_R, _MAX_P = 20, 32, 16


def _encode(password):
    """UTF-8 of the NFC form, so the same typed password always gives the same bytes (RFC 8265)."""
    if isinstance(password, bytes):
        return password
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _b64(data):
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password_bytes, salt, log2_n, r, p, length):
    memory = 128 * r * (2 ** log2_n) * p + (1 << 20)
    return hashlib.scrypt(password_bytes, salt=salt, n=2 ** log2_n, r=r, p=p,
                          maxmem=max(memory * 2, 32 << 20), dklen=length)


def hash_password(password):
    """The stored form of ``password`` with a fresh random salt."""
    if password is None:
        raise ValueError("cannot hash a missing password")
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(_encode(password), salt, LOG2_N, R, P, HASH_BYTES)
    return f"{PREFIX}ln={LOG2_N},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def _parse(stored):
    """(log2_n, r, p, salt, digest) or None when ``stored`` is not a hash we understand."""
    if not isinstance(stored, str) or not stored.startswith(PREFIX):
        return None
    fields = stored[len(PREFIX):].split("$")
    if len(fields) != 3:
        return None
    try:
        params = dict(item.split("=", 1) for item in fields[0].split(","))
        log2_n, r, p = int(params["ln"]), int(params["r"]), int(params["p"])
        salt, digest = _unb64(fields[1]), _unb64(fields[2])
    except (ValueError, KeyError, binascii.Error):
        return None
    if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if not salt or len(digest) < 16:
        return None
    return log2_n, r, p, salt, digest


def verify_password(password, stored):
    """True when ``password`` matches ``stored``; False for a NULL or malformed hash."""
    if password is None:
        return False
    parsed = _parse(stored)
    if parsed is None:
        return False
    log2_n, r, p, salt, digest = parsed
    candidate = _scrypt(_encode(password), salt, log2_n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored):
    """True when ``stored`` was made with other parameters than the current ones."""
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (LOG2_N, R, P) or len(parsed[4]) != HASH_BYTES


def burn_time():
    """Spend what a verification costs: logins to unknown accounts must not answer faster."""
    _scrypt(b"geomail", b"\0" * SALT_BYTES, LOG2_N, R, P, HASH_BYTES)
