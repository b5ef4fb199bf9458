"""Group commit (geomail/smtp/committer.py): deliveries ending at the same moment in one
worker share a transaction, each client getting its 250 after the COMMIT holding its
message; a lone delivery is committed at once.

Transactions are counted from /metrics (``geomail_store_connection_seconds_count`` for
``use="transaction"``: one per transaction of the worker), around the moment the
clients end their DATA, after every envelope and account exists.
"""

import time

from tests.fixtures.services import free_port
from tests.server.test_metrics import get, value
from tests.smtp.conftest import RawSMTP, dot_stuff, plain_message, stored_messages

CLIENTS = 20


def transactions(server):
    status, text = get(server.http_port, "/metrics")
    assert status == 200, text
    return value(text, "geomail_store_connection_seconds_count", use="transaction")


def start(storage_server):
    port = free_port()
    server = storage_server(workers=1, extra_args=["--http-port", str(port)])
    server.http_port = port
    return server


def test_deliveries_ending_together_share_transactions(storage_server):
    server = start(storage_server)
    clients = [RawSMTP(server.smtp_port) for _ in range(CLIENTS)]
    try:
        for index, client in enumerate(clients):
            client.envelope()
            client.send(dot_stuff(plain_message(subject=f"together {index}")))
        time.sleep(0.5)                        # every body is in; only the dots are left
        before = transactions(server)
        for client in clients:                 # the ends of data arrive at once
            client.sock.sendall(b".\r\n")
        replies = [client.reply() for client in clients]
        used = transactions(server) - before
    finally:
        for client in clients:
            client.quit()
    assert [code for code, _ in replies] == [250] * CLIENTS, replies
    assert 1 <= used < CLIENTS, f"{CLIENTS} deliveries took {used} transactions"

    messages = stored_messages(server.db_url)
    assert sorted(m["uid"] for m in messages) == list(range(1, CLIENTS + 1))
    modseqs = [m["modseq"] for m in sorted(messages, key=lambda m: m["uid"])]
    assert modseqs == sorted(set(modseqs)), "one modseq per message, growing with the UID"
    # each client's queue id names its own message: the 250 came after its COMMIT
    queue_ids = {text.rsplit(" ", 1)[1] for _, text in replies}
    stored_ids = {m["trace_headers"].split(b" id ", 1)[1].split(None, 1)[0].decode()
                  for m in messages}
    assert queue_ids == stored_ids
    subjects = {m["subject"] for m in messages}
    assert subjects == {f"together {index}" for index in range(CLIENTS)}


def test_a_lone_delivery_is_one_transaction_committed_at_once(storage_server):
    server = start(storage_server)
    client = RawSMTP(server.smtp_port)
    try:
        client.envelope()
        client.send(dot_stuff(plain_message(subject="alone")))
        time.sleep(0.2)
        before = transactions(server)
        started = time.monotonic()
        code, text = client.finish_data()
        waited = time.monotonic() - started
        assert code == 250, text
        assert transactions(server) - before == 1
        assert waited < 2.0, f"a lone delivery waited {waited:.2f} s for its 250"
    finally:
        client.quit()
    assert [m["subject"] for m in stored_messages(server.db_url)] == ["alone"]
