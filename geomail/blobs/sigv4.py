"""AWS Signature Version 4 for S3 GET requests (the IMAP read path).

boto3 signs every request through its event-driven request pipeline, about
0.3 ms of CPU each; FETCH of a thousand messages makes a hundred GETs, so
the read path signs its own requests here.  The algorithm is AWS's
(docs.aws.amazon.com, "Signature Version 4 signing process"): a canonical
request, a string to sign, and an HMAC chain whose key depends only on the
secret, the day, the region and the service, so it is computed once a day.
Requests carry ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` (no body to hash).
"""

import datetime
import hashlib
import hmac
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"


def quote_path(path):
    """The canonical URI of an S3 object path: RFC 3986 unreserved characters and '/' kept."""
    return urllib.parse.quote(path, safe="/~")


class Signer:
    """Signs requests for one set of credentials, one region, service s3."""

    def __init__(self, credentials, region):
        self.credentials = credentials     # botocore Credentials (refreshable) or None
        self.region = region
        self._key_for = (None, None)       # (day, secret) -> signing key

    def headers(self, method, host, path, extra=None, now=None):
        """The headers to send (host and extra included) with the Authorization signature.

        ``path`` is already in canonical (quoted) form; no query string.
        """
        now = now or datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": UNSIGNED}
        if extra:
            headers.update((name.lower(), value) for name, value in extra.items())
        if self.credentials is None:
            return headers                  # anonymous access
        frozen = self.credentials.get_frozen_credentials()
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        canonical = "\n".join((
            method, path, "",
            "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in names),
            ";".join(names), UNSIGNED))
        day = amz_date[:8]
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join((ALGORITHM, amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        signature = hmac.new(self._signing_key(day, frozen.secret_key), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        headers["authorization"] = (f"{ALGORITHM} Credential={frozen.access_key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")
        return headers

    def _signing_key(self, day, secret):
        cached_for, key = self._key_for
        if cached_for != (day, secret):
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key_for = ((day, secret), key)
        return key
