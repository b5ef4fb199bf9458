"""The IMAP read path's own S3 GETs: SigV4 signing and kept-alive connections.

Signatures are checked twice: against botocore's signer for the same request,
and by a SeaweedFS that enforces its credentials (PrivateS3(require_auth)).
"""

import datetime
import os
import secrets
import socket
import subprocess
import threading

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

from geomail.blobs import ranged_get
from geomail.blobs.s3 import BlobNotFound, BlobStore, BlobStoreError
from geomail.blobs.sigv4 import Signer, quote_path
from tests.fixtures.faults import PrivateS3
from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY, free_port


class TestSigner:
    @pytest.mark.parametrize("key", ["plain/key.bin", "a b/ünï+cödé%20(1).pdf", "x/~tilde*star"])
    @pytest.mark.parametrize("token", [None, "session-token"])
    def test_same_signature_as_botocore(self, key, token, monkeypatch):
        credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token)
        when = datetime.datetime(2026, 11, 25, 3, 4, 5, tzinfo=datetime.timezone.utc)
        path = quote_path(f"/bucket/{key}")
        ours = Signer(credentials, "eu-west-3").headers(
            "GET", "s3.example.net:9000", path, {"Range": "bytes=10-99"}, now=when)

        request = botocore.awsrequest.AWSRequest(
            method="GET", url=f"http://s3.example.net:9000{path}", headers={"Range": "bytes=10-99"})
        request.context["client_config"] = botocore.config.Config(
            s3={"payload_signing_enabled": False})
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
        botocore.auth.S3SigV4Auth(credentials, "s3", "eu-west-3").add_auth(request)
        assert ours["authorization"] == request.headers["Authorization"]
        assert ours["x-amz-date"] == request.headers["X-Amz-Date"]

    def test_anonymous_sends_no_authorization(self):
        headers = Signer(None, "us-east-1").headers("GET", "h", "/b/k")
        assert "authorization" not in headers


@pytest.fixture(scope="module")
def locked_s3():
    server = PrivateS3(require_auth=True).start()
    yield server
    server.close()


def store(endpoint, access=S3_ACCESS_KEY, secret=S3_SECRET_KEY, bucket="locked"):
    return BlobStore(endpoint, bucket, access, secret, connect_timeout=2, read_timeout=5)


class TestAgainstAnEnforcingServer:
    def test_ranges_with_the_right_keys(self, locked_s3):
        blobs = store(locked_s3.endpoint)
        blobs.ensure_bucket()
        data = os.urandom(200 * 1024)
        key = f"{secrets.token_hex(4)}/rapport final (v2) – été+.pdf"
        blobs.put(key, data)
        assert b"".join(blobs.get_range(key, 0)) == data
        assert b"".join(blobs.get_range(key, 70_000, 70_010)) == data[70_000:70_010]
        assert b"".join(blobs.get_range(key, len(data) - 1)) == data[-1:]
        with pytest.raises(BlobNotFound):
            blobs.get_range(key + ".missing", 0)

    def test_wrong_secret_is_refused(self, locked_s3):
        good = store(locked_s3.endpoint)
        good.ensure_bucket()
        good.put("secret/k", b"x" * 100)
        with pytest.raises(BlobStoreError) as info:
            store(locked_s3.endpoint, secret="not-the-secret").get_range("secret/k", 0)
        assert "SignatureDoesNotMatch" in str(info.value) or "AccessDenied" in str(info.value)
        assert not isinstance(info.value, BlobNotFound)


@pytest.fixture(scope="module")
def tls_s3(tmp_path_factory):
    """A SeaweedFS serving S3 over https only, with a certificate of our own CA bundle."""
    directory = tmp_path_factory.mktemp("s3tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    saved = os.environ.get("AWS_CA_BUNDLE")
    os.environ["AWS_CA_BUNDLE"] = str(cert)        # botocore and ranged_get both read it
    try:
        server = PrivateS3(tls=(str(cert), str(key))).start()
        yield server
        server.close()
    finally:
        if saved is None:
            os.environ.pop("AWS_CA_BUNDLE", None)
        else:
            os.environ["AWS_CA_BUNDLE"] = saved


def test_reads_over_https(tls_s3):
    blobs = store(tls_s3.endpoint, bucket="tls")
    blobs.ensure_bucket()
    data = os.urandom(300 * 1024)
    blobs.put("t/over-tls.bin", data)
    assert b"".join(blobs.get_range("t/over-tls.bin", 0)) == data
    assert b"".join(blobs.get_range("t/over-tls.bin", 100, 70_000)) == data[100:70_000]
    assert blobs._reads.tls and len(blobs._reads._idle) == 1      # kept alive, TLS and all


class TestConnections:
    def test_abandoned_stream_does_not_poison_the_pool(self, blob_store):
        key = f"t/{secrets.token_hex(6)}"
        data = os.urandom(600 * 1024)
        blob_store.put(key, data)
        for _ in range(3):
            stream = blob_store.get_range(key, 0)
            next(stream)
            stream.close()                       # the rest of the body is never read
        assert b"".join(blob_store.get_range(key, 5, 300_000)) == data[5:300_000]

    def test_many_reads_reuse_few_connections(self, blob_store):
        key = f"t/{secrets.token_hex(6)}"
        blob_store.put(key, b"0123456789")
        for i in range(50):
            assert b"".join(blob_store.get_range(key, i % 10, 10)) == b"0123456789"[i % 10:]
        assert len(blob_store._reads._idle) == 1

    def test_unreachable_endpoint_is_one_clear_error(self):
        blobs = store(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(BlobStoreError) as info:
            blobs.get_range("k", 0)
        assert "cannot connect" in str(info.value) and "bucket locked key k" in str(info.value)


class OneResponsePerConnection:
    """An HTTP server that answers one request per connection and then closes it
    without saying so (as a server whose keep-alive timeout ran out does)."""

    def __init__(self, body):
        self.body = body
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b"
                             % (len(self.body), self.body))
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)

    def close(self):
        self.listener.close()


def test_stale_kept_alive_connection_is_retried_on_a_new_one():
    server = OneResponsePerConnection(b"hello")
    pool = ranged_get.Pool(f"http://127.0.0.1:{server.port}", 2, 5)
    try:
        for _ in range(3):
            response = pool.request("GET", "/b/k", {"host": "x"})
            assert response.status == 200 and b"".join(response.chunks()) == b"hello"
        assert server.connections == 3
    finally:
        pool.close()
        server.close()


def test_chunked_responses_are_decoded():
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n")
            conn.recv(1)
    threading.Thread(target=serve, daemon=True).start()
    pool = ranged_get.Pool(f"http://127.0.0.1:{listener.getsockname()[1]}", 2, 5)
    try:
        response = pool.request("GET", "/b/k", {"host": "x"})
        assert b"".join(response.chunks()) == b"hello world"
        assert len(pool._idle) == 1
    finally:
        pool.close()
        listener.close()


class BusyThenServing:
    """An HTTP server that answers the first ``busy`` GETs 503 SlowDown, then 200."""

    def __init__(self, busy, body):
        self.busy = busy
        self.body = body
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        with conn:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buffered += chunk
                _, buffered = buffered.split(b"\r\n\r\n", 1)
                self.requests += 1
                if self.requests <= self.busy:
                    error = b"<Error><Code>SlowDown</Code></Error>"
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%b"
                                 % (len(error), error))
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b"
                                 % (len(self.body), self.body))

    def close(self):
        self.listener.close()


class TestBusyServer:
    """A 5xx before any byte of the object is asked again (max_attempts in all):
    one busy moment of the S3 server must not fail a FETCH, since a client such as
    mbsync gives a message up for good after one NO."""

    def test_two_refusals_then_the_object(self):
        server = BusyThenServing(2, b"the object")
        try:
            blobs = BlobStore(server.endpoint, "b", "k", "s", max_attempts=3)
            assert b"".join(blobs.get_range("some/key", 0)) == b"the object"
            assert server.requests == 3
        finally:
            server.close()

    def test_refused_every_time_is_one_clear_error(self):
        server = BusyThenServing(10, b"never")
        try:
            blobs = BlobStore(server.endpoint, "b", "k", "s", max_attempts=3)
            with pytest.raises(BlobStoreError) as info:
                blobs.get_range("some/key", 0)
            assert "SlowDown" in str(info.value) and not isinstance(info.value, BlobNotFound)
            assert server.requests == 3
        finally:
            server.close()

    def test_a_missing_object_is_not_asked_again(self, blob_store):
        with pytest.raises(BlobNotFound):
            blob_store.get_range(f"t/{secrets.token_hex(6)}.missing", 0)
