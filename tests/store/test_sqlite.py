"""The embedded store under gevent: SQLite never holds a worker's loop.

Each case runs in a subprocess: patching this pytest process would affect
every other test.  A ticker greenlet records the loop's pauses while SQLite
works (a long statement, a write lock held by another process); the
longest pause must stay far below the work's own duration.
"""

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]

PRELUDE = """
from gevent import monkey; monkey.patch_all()
import gevent, json, os, sqlite3, sys, time
from geomail.store.sqlite import SQLiteDatabase
from geomail.store.migrations import migrate
path = sys.argv[1]
db = SQLiteDatabase(path, pool_size=4)
migrate(db)
gaps = []
def ticker():
    last = time.monotonic()
    while True:
        gevent.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
"""


def run(code, path, timeout=60):
    out = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(path)],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_long_statement_runs_beside_the_loop(tmp_path):
    """A statement that keeps SQLite busy for about a second (a recursive count) while
    the ticker keeps ticking: the loop's longest pause stays short."""
    took, longest, ticks = run("""
        tick = gevent.spawn(ticker)
        started = time.monotonic()
        with db.cursor() as cur:
            cur.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                        " WHERE i < 3000000) SELECT COUNT(*) FROM n")
            assert cur.fetchone()[0] == 3000000
        took = time.monotonic() - started
        tick.kill()
        print(took, max(gaps), len(gaps))
    """, tmp_path / "long.sqlite3")
    assert float(took) > 0.3, took            # the statement really was long
    assert float(longest) < 0.1, longest      # and the loop never waited for it
    assert int(ticks) > 20


def test_a_writer_waits_for_another_process_without_freezing(tmp_path):
    """Another process holds the write lock for 1 s; a delivery-like transaction here waits
    for it (busy handler, in a thread) and then commits; meanwhile the loop goes on and a
    reader (WAL) is answered at once."""
    path = tmp_path / "busy.sqlite3"
    took, longest, read_took = run("""
        from geomail.store.accounts import ensure_account
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO uidvalidity_counter (id, next_value) VALUES (2, 1)")
        import threading
        commit_later = __import__("gevent.monkey", fromlist=["x"]).get_original(
            "threading", "Timer")(1.0, lambda: holder.execute("COMMIT"))
        commit_later.start()
        tick = gevent.spawn(ticker)
        started = time.monotonic()
        writer = gevent.spawn(ensure_account, db, "busy@example.test")
        gevent.sleep(0.2)
        read_started = time.monotonic()
        with db.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM accounts")
            cur.fetchone()
        read_took = time.monotonic() - read_started
        writer.get(timeout=20)
        took = time.monotonic() - started
        tick.kill()
        print(took, max(gaps), read_took)
    """, path)
    assert float(took) >= 0.7, took           # it did wait for the other process
    assert float(longest) < 0.1, longest
    assert float(read_took) < 0.2, read_took  # WAL: readers do not wait for writers


def test_greenlets_racing_to_create_an_account_make_one(tmp_path):
    ids, = run("""
        from geomail.store.accounts import ensure_account
        jobs = [gevent.spawn(ensure_account, db, "race@example.test") for _ in range(12)]
        gevent.joinall(jobs, raise_error=True)
        print(len({job.value.id for job in jobs}))
    """, tmp_path / "race.sqlite3")
    assert ids == "1"


def test_two_processes_allocate_distinct_ascending_uids(tmp_path):
    """Two worker processes deliver into one mailbox at once: every UID once, no gap."""
    path = tmp_path / "uids.sqlite3"
    run("""
        from geomail.store.accounts import create_account
        create_account(db, "uids@example.test")
    """, path)
    code = """
        from geomail.store import delivery
        with db.cursor() as cur:
            cur.execute("SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id"
                        " WHERE a.address = 'uids@example.test' AND m.name = 'INBOX'")
            mailbox_id = cur.fetchone()[0]
        def one():
            def work(cur):
                return delivery._allocate_uid(cur, mailbox_id, 1, 10)
            return db.run_transaction(work)
        jobs = [gevent.spawn(one) for _ in range(50)]
        gevent.joinall(jobs, raise_error=True)
        print(json.dumps([job.value for job in jobs]))
    """
    procs = [subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    import json
    uids = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        uids.extend(json.loads(out))
    assert sorted(uids) == list(range(1, 101))
