"""Attachment bodies in an S3-compatible object store: the one interface to S3.

One ``BlobStore`` (one boto3 client, thread- and greenlet-safe) per worker,
created after fork. Calls block; under gevent's monkey-patching botocore's
sockets yield, so they are cooperative without importing gevent here.
Ranged reads, the hot path of IMAP FETCH, go through ``ranged_get`` (own
SigV4 signing, kept-alive connections) instead of boto3.
"""

import re
import time

import boto3
import botocore.config
import botocore.exceptions

from geomail.blobs import ranged_get
from geomail.blobs.errors import BlobNotFound, BlobStoreError, OpenUpload, StoredObject
from geomail.blobs.sigv4 import Signer
from geomail.blobs.upload import MIN_PART_SIZE, MiB, Upload, check_sizes

__all__ = ["BlobStore", "BlobStoreError", "BlobNotFound", "StoredObject", "OpenUpload", "Upload",
           "MiB", "MIN_PART_SIZE"]   # the errors and tuples live in geomail.blobs.errors

_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)
CHUNK_SIZE = 64 * 1024  # what get_range yields at a time
DELETE_BATCH = 1000  # delete_objects' limit
RETRY_PAUSE = 0.05  # seconds before the second GET; 4x more before each next one


def _describe(exc):
    """A short cause for a botocore exception: 'NoSuchBucket: The specified bucket ...'."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.get("Message") or ""
        return f"{code}: {message}".rstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _error_code(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _uncertain(exc):
    """Whether a failed request may still have had (or yet have) its effect.

    Only a 4xx is a sure refusal.  A timeout, a connection lost mid-request or
    a 5xx leave it unknown: S3 may have read the whole request and store it
    later (SeaweedFS paused, then resumed).  Even "could not connect" is no
    proof, since botocore's retries report only the last attempt's error.
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500
    return True


def _xml_code(body):
    """The <Code> of an S3 XML error document, if any."""
    match = re.search(r"<Code>([^<]+)</Code>", body)
    return match.group(1) if match else ""


def _cut(stream, skip, length):
    """The chunks of ``stream`` after its first ``skip`` bytes, ``length`` bytes at most."""
    for chunk in stream:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        if skip:
            chunk, skip = chunk[skip:], 0
        if length is not None:
            if length <= 0:
                return
            chunk = chunk[:length]
            length -= len(chunk)
        yield chunk


_NOT_FOUND = ("NoSuchKey", "404", "NotFound")
_NO_BUCKET = ("NoSuchBucket",)
_NO_UPLOAD = ("NoSuchUpload",)


class BlobStore:
    """One bucket on one S3-compatible endpoint."""

    def __init__(self, endpoint, bucket, access_key=None, secret_key=None, region="us-east-1",
                 multipart_threshold=8 * MiB, part_size=8 * MiB, connect_timeout=3,
                 read_timeout=30, max_attempts=3, max_pool_connections=50):
        check_sizes(multipart_threshold, part_size)
        self.endpoint = endpoint or None  # None: AWS's own endpoint for the region
        self.bucket = bucket
        self.region = region or "us-east-1"
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        config = botocore.config.Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            # Newer botocore adds CRC checksums (aws-chunked uploads) by default,
            # which several S3-compatible services reject; only send them when
            # an operation requires it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A private session: boto3's default session is shared module state.
        session = boto3.session.Session(aws_access_key_id=access_key or None,
                                        aws_secret_access_key=secret_key or None)
        self.client = session.client("s3", endpoint_url=self.endpoint, config=config)
        self._signer = Signer(session.get_credentials(), self.region)
        self._reads = ranged_get.Pool(self.client.meta.endpoint_url, connect_timeout, read_timeout)
        self._read_attempts = max(1, max_attempts)

    def __repr__(self):
        return f"BlobStore({self._where()})"

    def _where(self, key=None):
        place = f"{self.endpoint or 'aws:' + self.region} bucket {self.bucket}"
        return place if key is None else f"{place} key {key}"

    def _fail(self, operation, exc, key=None):
        """The BlobStoreError for a failed operation (BlobNotFound for a missing key)."""
        cls = BlobNotFound if _error_code(exc) in _NOT_FOUND else BlobStoreError
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                            botocore.exceptions.ConnectTimeoutError)):
            error = BlobStoreError(f"S3 {operation} failed: endpoint {self.endpoint} unreachable "
                                   f"({_describe(exc)})")
        else:
            error = cls(f"S3 {operation} failed at {self._where(key)}: {_describe(exc)}")
        error.uncertain = _uncertain(exc)
        return error

    # -- bucket ---------------------------------------------------------------

    def ensure_bucket(self, create=True):
        """Check at start that the endpoint answers and the bucket exists (creating it if allowed)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as exc:
            code = _error_code(exc)
            if code not in ("404", "NoSuchBucket", "NotFound"):
                if code in ("403", "AccessDenied"):
                    raise BlobStoreError(f"S3 access to {self._where()} denied: check the access "
                                         "key and secret key") from None
                raise self._fail("head_bucket", exc) from None
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise self._fail("head_bucket", exc) from None
        if not create:
            raise BlobStoreError(f"S3 bucket {self.bucket} does not exist at "
                                 f"{self.endpoint or 'AWS'} and creating it is turned off")
        self._create_bucket()

    def _create_bucket(self):
        kwargs = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._fail("create_bucket", exc) from None
            # another worker created it a moment ago
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise self._fail("create_bucket", exc) from None

    # -- objects --------------------------------------------------------------

    def put(self, key, data):
        """Store ``data`` (bytes or a binary file object) in one request."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except _ERRORS as exc:
            raise self._fail("put_object", exc, key) from None

    def get(self, key):
        """The whole object as bytes (small objects; stream large ones with get_range)."""
        return b"".join(self.get_range(key, 0, None))

    def get_range(self, key, start, end=None):
        """An iterator of chunks (at most 64 KiB each) of bytes ``start`` to ``end`` (exclusive).

        ``end=None`` reads to the end of the object. The request is made now,
        so a missing object raises BlobNotFound here, not at the first chunk.
        """
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad range {start}-{end}")
        if end is not None and end == start:
            return iter(())
        # HTTP byte ranges are inclusive (RFC 9110 14.1.2)
        extra = {}
        if start or end is not None:
            extra["range"] = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        response = self._request_with_retries(key, extra)
        if response.status == 416:                 # start at or past the end of the object
            response.read(2048)
            return iter(())
        if response.status not in (200, 206):
            body = response.read(2048).decode("utf-8", "replace")
            cls = BlobNotFound if response.status == 404 else BlobStoreError
            code = _xml_code(body) or str(response.status)
            raise cls(f"S3 get_object failed at {self._where(key)}: {code}")
        stream = self._stream(response, key)
        if response.status == 200 and extra:        # a server that ignored Range
            stream = _cut(stream, start, None if end is None else end - start)
        return stream

    def _request_with_retries(self, key, extra):
        """Send the GET; a failure before any byte of the object (no connection, a
        timeout, a 5xx) is tried again, up to max_attempts (3) in all, as botocore's
        standard retry mode does for the other calls.  A reader never sees a busy S3
        server's passing refusal: an IMAP client such as mbsync gives a message up for
        good after one NO."""
        path = self._reads.path(self.bucket, key)
        for attempt in range(1, self._read_attempts + 1):
            last = attempt == self._read_attempts
            try:
                headers = self._signer.headers("GET", self._reads.host_header, path, extra)
                response = self._reads.request("GET", path, headers)
            except ranged_get.HttpError as exc:
                if last:
                    raise BlobStoreError(f"S3 get_object failed at {self._where(key)}: {exc}") \
                        from None
            except botocore.exceptions.BotoCoreError as exc:      # refreshing credentials
                raise self._fail("get_object", exc, key) from None
            else:
                if response.status < 500 or last:
                    return response
                response.read(2048)
            time.sleep(RETRY_PAUSE * 4 ** (attempt - 1))

    def _stream(self, response, key):
        try:
            yield from response.chunks()
        except (ranged_get.HttpError, OSError) as exc:
            raise BlobStoreError(f"S3 get_object (reading) failed at {self._where(key)}: "
                                 f"{type(exc).__name__}: {exc}") from None

    def delete(self, keys):
        """Delete objects in batches of 1000; missing keys are not an error."""
        keys = list(keys)
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            except _ERRORS as exc:
                raise self._fail("delete_objects", exc) from None
            errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                first = errors[0]
                raise BlobStoreError(
                    f"S3 delete_objects failed for {len(errors)} of {len(batch)} keys at "
                    f"{self._where()}, first {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}")

    def list_keys(self, prefix=""):
        """Iterate over every key starting with ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except _ERRORS as exc:
            raise self._fail("list_objects_v2", exc) from None

    def list_objects(self, prefix=""):
        """Iterate over StoredObject(key, size, last_modified) of every object under ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], item.get("Size", 0), item.get("LastModified"))
        except _ERRORS as exc:
            raise self._fail("list_objects_v2", exc) from None

    def exists(self, key):
        """Whether the object exists now (HEAD); BlobStoreError when S3 cannot tell."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except _ERRORS as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise self._fail("head_object", exc, key) from None

    def list_multipart_uploads(self, prefix=""):
        """[(key, upload_id)] of multipart uploads begun and not completed or aborted."""
        return [(u.key, u.upload_id) for u in self.open_uploads(prefix)]

    def open_uploads(self, prefix=""):
        """[OpenUpload(key, upload_id, initiated)] of multipart uploads still open.

        ``initiated`` is an aware datetime (None if the service does not say):
        fsck and the janitor judge an upload's age by it.
        """
        uploads, kwargs = [], {"Bucket": self.bucket, "Prefix": prefix}
        try:
            while True:
                response = self.client.list_multipart_uploads(**kwargs)
                uploads.extend(OpenUpload(u["Key"], u["UploadId"], u.get("Initiated"))
                               for u in response.get("Uploads", []))
                if not response.get("IsTruncated"):
                    return uploads
                kwargs.update(KeyMarker=response.get("NextKeyMarker", ""),
                              UploadIdMarker=response.get("NextUploadIdMarker", ""))
        except _ERRORS as exc:
            raise self._fail("list_multipart_uploads", exc) from None

    def abort_upload(self, key, upload_id):
        """Abort one multipart upload; one that is already gone is not an error."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except _ERRORS as exc:
            if _error_code(exc) in _NO_UPLOAD:
                return
            raise self._fail("abort_multipart_upload", exc, key) from None

    def remove(self, key):
        """Abort every open multipart upload of ``key``, then delete the object.

        Missing things are not an error; BlobStoreError if S3 could not do it.
        """
        for upload in self.open_uploads(prefix=key):
            if upload.key == key:
                self.abort_upload(key, upload.upload_id)
        self.delete([key])

    def open_upload(self, key):
        """An Upload to ``key``: write() pieces, then close() (or abort())."""
        return Upload(self, key)

    # -- multipart ------------------------------------------------------------

    def create_upload(self, key):
        """Begin a multipart upload of ``key``; its upload id."""
        try:
            response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        except _ERRORS as exc:
            raise self._fail("create_multipart_upload", exc, key) from None
        return response["UploadId"]

    def upload_part(self, key, upload_id, number, data):
        """Send part ``number`` (1-based; all but the last at least 5 MiB); its token (ETag)."""
        try:
            response = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               PartNumber=number, Body=data)
        except _ERRORS as exc:
            raise self._fail(f"upload_part {number}", exc, key) from None
        return response["ETag"]

    def complete_upload(self, key, upload_id, parts):
        """Make the object from ``parts``, [(number, token)] in ascending order."""
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t} for n, t in parts]})
        except _ERRORS as exc:
            raise self._fail("complete_multipart_upload", exc, key) from None
