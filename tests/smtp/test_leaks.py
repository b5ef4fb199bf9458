"""Nothing leaks in storage: SeaweedFS killed, paused and restarted during uploads.

The private SeaweedFS of tests/fixtures/faults.py is really killed (SIGKILL),
paused (SIGSTOP, then SIGCONT: its queued requests are carried out late) and
restarted, while a real bin/geomail receives messages with attachments,
single PUT and multipart (--oss-multipart-threshold 1M, --oss-part-size 5M:
BlobStore refuses parts under S3's 5 MiB minimum, so a 6 MiB attachment is two
parts).  After every kind of fault, once the janitor has run (every second
here), the bucket holds exactly the referenced objects and no open upload,
every message answered 250 is stored whole (each attachment's object has the
bytes sent), and nothing answered 4xx is half-stored.

The first tests drive geomail's own Delivery in this process against a paused
S3 with a 1 s read timeout: the PUT (or CreateMultipartUpload) times out,
the delete cannot be confirmed, and the request queued in the paused S3 is
carried out after we gave up: the intent row must stay until the janitor
has removed what landed.
"""

import argparse
import hashlib
import secrets
import threading
import time

import pytest

from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY
from tests.smtp.conftest import (MiB, assert_consistent, attachment_message, attachment_payload,
                                 bucket_keys, count_rows, db_query, multipart_uploads,
                                 plain_message, s3_client, send_message, wait_until)

# Faults injected into SeaweedFS and MariaDB themselves (pause, kill, restart).
pytestmark = pytest.mark.mysql_s3

SMALL = 200 * 1024           # one PUT
LARGE = 6 * MiB              # multipart: a 5 MiB part and a 1 MiB one
SERVER_ARGS = ["--janitor-interval", "1", "--oss-multipart-threshold", "1M",
               "--oss-part-size", "5M"]


# -- in this process: the PUT that lands after we gave up ------------------------------

@pytest.fixture
def paused_context(fresh_db_url, private_s3):
    """A real ServerContext (real MariaDB, the private S3 with a 1 s read timeout)."""
    from geomail.blobs.s3 import BlobStore
    from geomail.context import ServerContext
    from geomail.store.database import Database
    from geomail.store.migrations import migrate
    private_s3.ensure_running()
    db = Database(fresh_db_url(), 4)
    migrate(db)
    bucket = f"geomail-leaks-{secrets.token_hex(6)}"
    store = BlobStore(private_s3.endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY,
                      multipart_threshold=1 * MiB, part_size=5 * MiB, read_timeout=1,
                      connect_timeout=1, max_attempts=1)
    store.ensure_bucket()
    context = ServerContext(argparse.Namespace(janitor_interval=0.5), db, store)
    yield context
    private_s3.ensure_running()
    db.close()


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_request_carried_out_after_we_gave_up_keeps_its_intent(paused_context, private_s3,
                                                               size):
    from geomail import janitor
    from geomail.ingest import Delivery, DeliveryFailed
    context = paused_context
    db_url = context.db.url
    delivery = Delivery(context, owner_account_id=1)
    private_s3.pause()
    try:
        with pytest.raises(DeliveryFailed):
            delivery.feed(attachment_message(size))
            delivery.commit([])
        # the removal could not be confirmed: the intent stays, released to any janitor
        rows = db_query(db_url, "SELECT owner_pid FROM pending_objects")
        assert [int(pid) for (pid,) in rows] == [0]
    finally:
        private_s3.resume()
    key = db_query(db_url, "SELECT object_key FROM pending_objects")[0][0]
    landed = wait_until_or_none(lambda: (bucket_keys(private_s3.endpoint, context.blobs.bucket)
                                         or multipart_uploads(private_s3.endpoint,
                                                              context.blobs.bucket)), 3)
    print(f"after resume, S3 carried out the late request: {bool(landed)} ({landed})")
    # the janitor settles it: removed after the grace, then forgotten
    deadline = time.monotonic() + 30
    while count_rows(db_url, "pending_objects") and time.monotonic() < deadline:
        janitor.sweep(context)
        time.sleep(0.25)
    assert count_rows(db_url, "pending_objects") == 0
    assert bucket_keys(private_s3.endpoint, context.blobs.bucket) == []
    assert multipart_uploads(private_s3.endpoint, context.blobs.bucket) == []
    assert not context.blobs.exists(key)


def test_abort_says_whether_the_object_is_gone(paused_context, private_s3):
    from geomail.blobs.pipelined import ByteBudget, PipelinedUpload
    store = paused_context.blobs
    upload = PipelinedUpload(store, "abort/confirmed", ByteBudget(64 * MiB))
    upload.write(b"x" * 1000)
    upload.close()
    assert store.exists("abort/confirmed")
    assert upload.abort() is True and not store.exists("abort/confirmed")

    upload = PipelinedUpload(store, "abort/unconfirmed", ByteBudget(64 * MiB))
    upload.write(b"y" * 1000)
    upload.close()
    private_s3.kill()
    try:
        assert upload.abort() is False          # S3 is down: not known to be gone
    finally:
        private_s3.start()
    assert store.exists("abort/unconfirmed")
    assert upload.abort() is True and not store.exists("abort/unconfirmed")


def wait_until_or_none(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


# -- over a real bin/geomail ----------------------------------------------------------

class Senders:
    """Threads sending messages of mixed kinds; records each one's answer."""

    KINDS = (("plain", 0), ("small", SMALL), ("multipart", LARGE))

    def __init__(self, port, threads=4, per_thread=3):
        self.port = port
        self.sent = []          # [(subject, kind, payload sha256 or None, code)]
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n, per_thread), daemon=True)
                        for n in range(threads)]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout=120):
        for thread in self.threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a sender hung"

    def run(self, n, count):
        for i in range(count):
            kind, size = self.KINDS[(n + i) % len(self.KINDS)]
            self.send(f"t{n}-m{i}-{kind}-{secrets.token_hex(3)}", kind, size)

    def send(self, subject, kind, size):
        payload = attachment_payload(size, seed=subject.encode()) if size else None
        message = (attachment_message(size, subject=subject, payload=payload) if size
                   else plain_message(subject=subject))
        try:
            code, _ = send_message(self.port, message)
        except OSError:
            code = None         # connection lost: outcome unknown to the client
        with self.lock:
            self.sent.append((subject, kind, payload and hashlib.sha256(payload).hexdigest(),
                              code))

    def retry_refused(self):
        """SMTP's retry of everything not answered 250, once storage is back."""
        for index, (subject, kind, sha, code) in enumerate(list(self.sent)):
            if code != 250:
                size = dict(self.KINDS)[kind]
                payload = attachment_payload(size, seed=subject.encode()) if size else None
                message = (attachment_message(size, subject=subject, payload=payload) if size
                           else plain_message(subject=subject))
                code, text = send_message(self.port, message)
                assert code == 250, text
                self.sent[index] = (subject, kind, sha, code)


def stored_by_subject(db_url):
    """{subject: [[attachment sha256, ...] per stored copy]}."""
    rows = db_query(db_url, "SELECT m.id, m.subject, a.sha256 FROM messages m LEFT JOIN"
                            " attachments a ON a.content_id = m.content_id ORDER BY m.id, a.idx")
    copies = {}
    for message_id, subject, sha in rows:
        copies.setdefault(subject, {}).setdefault(message_id, [])
        if sha is not None:
            copies[subject][message_id].append(sha)
    return {subject: list(by_id.values()) for subject, by_id in copies.items()}


def assert_storage_exact(server, senders):
    """The janitor has run: bucket == referenced objects, no upload, 250 whole, 4xx not half."""
    wait_until(lambda: count_rows(server.db_url, "pending_objects") == 0, timeout=60,
               message="the janitor to settle every intent")
    assert_consistent(server.db_url, server.s3_endpoint, server.bucket)
    client = s3_client(server.s3_endpoint)
    for _, _, key, size, sha in db_query(server.db_url, "SELECT content_id, bucket, object_key,"
                                         " decoded_size, sha256 FROM attachments"):
        body = client.get_object(Bucket=server.bucket, Key=key)["Body"].read()
        assert len(body) == size and hashlib.sha256(body).hexdigest() == sha, key
    stored = stored_by_subject(server.db_url)
    for subject, kind, sha, code in senders.sent:
        copies = stored.get(subject, [])
        whole = [sha] if sha else []
        if code == 250:
            assert copies, f"{subject} was answered 250 and is not stored"
        for copy in copies:        # any stored copy, whatever the answer, is whole
            assert copy == whole, f"{subject} ({code}) half-stored: {copy} != {whole}"


def _in_flight(server):
    return (count_rows(server.db_url, "pending_objects")
            and multipart_uploads(server.s3_endpoint, server.bucket))


def fault_kill(s3):
    s3.kill()
    time.sleep(1.5)
    s3.start()


def fault_pause(s3):
    s3.pause()
    time.sleep(3)
    s3.resume()


def fault_pause_then_kill(s3):
    s3.pause()
    time.sleep(2)
    s3.kill()
    time.sleep(1)
    s3.start()


def fault_restart(s3):
    s3.stop()
    s3.start()


FAULTS = {"kill": fault_kill, "pause": fault_pause, "pause_then_kill": fault_pause_then_kill,
          "restart": fault_restart}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_during_uploads_leaves_exactly_the_referenced_objects(storage_server, private_s3,
                                                                   fault):
    private_s3.ensure_running()
    server = storage_server(s3_endpoint=private_s3.endpoint, extra_args=SERVER_ARGS)
    assert send_message(server.smtp_port, plain_message())[0] == 250     # the account exists
    senders = Senders(server.smtp_port, threads=3, per_thread=2).start()
    try:
        wait_until(lambda: _in_flight(server), timeout=30, interval=0.02,
                   message="a multipart upload in flight")
        FAULTS[fault](private_s3)
    finally:
        private_s3.ensure_running()
        senders.join()
    answers = [code for _, _, _, code in senders.sent]
    print(f"{fault}: answers {sorted(answers, key=str)}")
    assert all(code in (250, 451, 421, None) for code in answers), answers
    if fault != "pause":          # uploads in flight died with S3: some message was refused
        assert any(code != 250 for code in answers), answers
    assert_storage_exact(server, senders)
    # the senders retry what was refused: everything is stored, and still nothing leaks
    senders.retry_refused()
    assert_storage_exact(server, senders)
    assert all(code == 250 for _, _, _, code in senders.sent)


# -- the janitor: several at once, never a committed object ---------------------------

@pytest.fixture
def janitor_context(fresh_db_url, s3_endpoint):
    """A real ServerContext on a fresh database and a bucket of its own (the session S3)."""
    from geomail.blobs.s3 import BlobStore
    from geomail.context import ServerContext
    from geomail.store.database import Database
    from geomail.store.migrations import migrate
    from tests.fixtures.services import _boto_client, _empty_and_delete_bucket

    made = []

    def make(db_url=None):
        db = Database(db_url or made[0].db.url if made else fresh_db_url(), 4)
        migrate(db)
        bucket = made[0].blobs.bucket if made else f"geomail-janitor-{secrets.token_hex(6)}"
        store = BlobStore(s3_endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY,
                          multipart_threshold=1 * MiB, part_size=5 * MiB)
        store.ensure_bucket()
        context = ServerContext(argparse.Namespace(janitor_interval=0.2), db, store)
        made.append(context)
        return context

    yield make
    if made:
        _empty_and_delete_bucket(_boto_client(s3_endpoint), made[0].blobs.bucket)
    for context in made:
        context.db.close()


def _stale_intent(db, bucket, key):
    """An intent its writer released a minute ago (any janitor may settle it)."""
    db_query(db.url, "INSERT INTO pending_objects (bucket, object_key, owner_host, owner_pid,"
             " created_at) VALUES (%s, %s, 'elsewhere.invalid', 0, NOW(6) - INTERVAL 1 MINUTE)",
             (bucket, key))


def test_janitor_never_deletes_a_committed_object_and_sweeps_in_turn(janitor_context):
    from geomail import janitor
    from geomail.ingest import Delivery
    from geomail.store.accounts import create_account
    from geomail.store.delivery import Target, inbox_of
    context = janitor_context()
    db, store = context.db, context.blobs
    create_account(db, "keep@example.com")
    _, inbox = inbox_of(db, "keep@example.com")
    delivery = Delivery(context, owner_account_id=1)
    delivery.feed(attachment_message(SMALL, subject="committed"))
    delivery.commit([Target(inbox)])
    (committed_key,) = [r[0] for r in db_query(db.url, "SELECT object_key FROM attachments")]
    # a stale intent naming the committed object (say, a row whose id the writer never
    # learnt), and leaks of every kind with stale intents
    _stale_intent(db, store.bucket, committed_key)
    for n in range(6):
        store.put(f"stale/object-{n}", b"x" * 1000)
        _stale_intent(db, store.bucket, f"stale/object-{n}")
    upload = store.open_upload("stale/upload")
    upload.write(b"y" * (6 * MiB))
    assert upload.multipart
    _stale_intent(db, store.bucket, "stale/upload")
    # a dead process of this host; another host's row past the hour; another host's
    # fresh row (a delivery running there: must be left alone)
    import socket
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()
    for key, host, pid, age in (("stale/dead-pid", socket.gethostname(), dead.pid, 0),
                                ("stale/foreign-old", "elsewhere.invalid", 4242, 7200),
                                ("live/foreign-fresh", "elsewhere.invalid", 4242, 0)):
        store.put(key, b"z")
        db_query(db.url, "INSERT INTO pending_objects (bucket, object_key, owner_host,"
                 " owner_pid, created_at) VALUES (%s, %s, %s, %s, NOW(6) - INTERVAL %s SECOND)",
                 (store.bucket, key, host, pid, age))

    # another worker (or host) sweeping holds the lock: this one skips its round
    with janitor.intents.sweep_lock(db, janitor.lock_name(db)) as held:
        assert held
        assert janitor.sweep(janitor_context()) == 0
    assert count_rows(db.url, "pending_objects") == 11

    # four janitors (own pools, as on four hosts) sweep at once until all is settled
    contexts = [janitor_context() for _ in range(4)]
    errors = []

    def sweeper(ctx):
        deadline = time.monotonic() + 20
        try:
            while count_rows(db.url, "pending_objects") > 1 and time.monotonic() < deadline:
                janitor.sweep(ctx)
                time.sleep(0.05)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    left = db_query(db.url, "SELECT object_key FROM pending_objects")
    assert [key for (key,) in left] == ["live/foreign-fresh"]
    assert bucket_keys(store.endpoint, store.bucket) == sorted([committed_key,
                                                                "live/foreign-fresh"])
    assert multipart_uploads(store.endpoint, store.bucket) == []
    db_query(db.url, "DELETE FROM pending_objects")
    store.delete(["live/foreign-fresh"])
    assert_consistent(db.url, store.endpoint, store.bucket)


def test_discard_intent_first_object_then_intent(janitor_context, private_s3):
    from geomail import janitor
    from geomail.blobs.s3 import BlobStore
    context = janitor_context()
    store = BlobStore(private_s3.endpoint, context.blobs.bucket, S3_ACCESS_KEY, S3_SECRET_KEY,
                      connect_timeout=1, read_timeout=2, max_attempts=1)
    private_s3.ensure_running()
    store.ensure_bucket()
    store.put("unwanted/a", b"a")
    store.put("unwanted/b", b"b")
    assert janitor.discard(context.db, store, ["unwanted/a"]) == []
    assert not store.exists("unwanted/a")
    assert count_rows(context.db.url, "pending_objects") == 0
    private_s3.kill()
    try:   # S3 down: the intent stays, released, for the janitor
        assert janitor.discard(context.db, store, ["unwanted/b"]) == ["unwanted/b"]
        assert [int(p) for (p,) in db_query(context.db.url,
                                            "SELECT owner_pid FROM pending_objects")] == [0]
    finally:
        private_s3.start()
    assert store.exists("unwanted/b")
    from geomail.context import ServerContext
    context = ServerContext(context.config, context.db, store)   # its janitor: the private S3
    deadline = time.monotonic() + 20
    while count_rows(context.db.url, "pending_objects") and time.monotonic() < deadline:
        janitor.sweep(context)
        time.sleep(0.1)
    assert count_rows(context.db.url, "pending_objects") == 0
    assert not store.exists("unwanted/b")
    store.delete([k for k in bucket_keys(private_s3.endpoint, store.bucket)])


# -- EXPUNGE goes through the discard path ----------------------------------------------

def test_expunge_with_s3_down_leaves_the_object_to_the_janitor(storage_server, private_s3):
    import imaplib
    from tests.fixtures.server import run_admin
    private_s3.ensure_running()
    server = storage_server(s3_endpoint=private_s3.endpoint, extra_args=SERVER_ARGS, workers=1)
    created = run_admin(["account", "add", "rcpt@example.com", "--password-stdin"],
                        server.db_url, server.s3_endpoint, server.bucket, stdin="pw\n")
    assert created.returncode == 0, created.stderr
    for subject in ("first", "second"):
        assert send_message(server.smtp_port,
                            attachment_message(SMALL, subject=subject))[0] == 250
    first, second = (r[0] for r in db_query(
        server.db_url, "SELECT a.object_key FROM messages m JOIN attachments a"
        " ON a.content_id = m.content_id ORDER BY m.uid"))
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        imap.login("rcpt@example.com", "pw")
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "(\\Deleted)")
        assert imap.expunge()[0] == "OK"
        # S3 up: intent, object, intent: nothing left of the first message
        assert bucket_keys(server.s3_endpoint, server.bucket) == [second]
        assert count_rows(server.db_url, "pending_objects") == 0
        imap.store("1", "+FLAGS", "(\\Deleted)")
        private_s3.kill()
        try:
            assert imap.expunge()[0] == "OK"     # the rows go; the object cannot, yet
            assert count_rows(server.db_url, "pending_objects") == 1
        finally:
            private_s3.start()
        imap.logout()
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass
    wait_until(lambda: count_rows(server.db_url, "pending_objects") == 0, timeout=30,
               message="the janitor to remove the expunged object")
    assert bucket_keys(server.s3_endpoint, server.bucket) == []
    assert_consistent(server.db_url, server.s3_endpoint, server.bucket)
    assert first != second
