"""Under gevent's monkey-patching the store's blocking code is cooperative.

Run in a subprocess: patching this pytest process would affect every other test.
"""

import pathlib
import subprocess
import sys
import textwrap


def test_queries_yield_to_other_greenlets(mysql_url):
    code = textwrap.dedent(f"""
        from gevent import monkey; monkey.patch_all()
        import gevent, secrets, time
        from geomail.store.database import Database
        from geomail.store.migrations import migrate
        from geomail.store.accounts import ensure_account
        db = Database({mysql_url!r}, pool_size=4)
        migrate(db)
        ticks = []
        def ticker():
            while True:
                ticks.append(time.monotonic()); gevent.sleep(0.01)
        def slow_query():
            with db.cursor() as cur:
                cur.execute("SELECT SLEEP(0.5)")
        tick = gevent.spawn(ticker)
        address = f"gevent-{{secrets.token_hex(4)}}@example.org"
        jobs = [gevent.spawn(slow_query) for _ in range(2)]
        jobs += [gevent.spawn(ensure_account, db, address) for _ in range(8)]
        gevent.joinall(jobs, raise_error=True)
        tick.kill()
        ids = {{job.value.id for job in jobs[2:]}}
        print(len(ticks), len(ids))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=pathlib.Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    ticks, accounts = map(int, out.stdout.split())
    assert ticks >= 20  # the ticker ran while both connections slept in MySQL
    assert accounts == 1
