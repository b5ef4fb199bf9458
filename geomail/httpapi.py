"""The operator's HTTP endpoint (``--http-port``): ``/metrics``, ``/health`` and, with
``--admin-token``, the management API under ``/api`` (geomail/api.py).

Served by every worker on a shared SO_REUSEPORT socket (bound to
``--http-host``, 127.0.0.1 by default), so it answers as long as any worker
does.  ``/metrics``: Prometheus text, every process added up (metrics.py).
``/health``: 200 ``ok`` when the master runs all its workers and the store
and the blob store each answer within CHECK_TIMEOUT seconds, else 503 with
one line per reason; a load balancer or systemd watchdog can use it as is.
"""

import logging

from geomail import httpstatus, metrics

log = logging.getLogger("geomail.http")

CHECK_TIMEOUT = 3.0


def application(context):
    """The WSGI app of one worker (gevent.pywsgi runs it)."""
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/api/"):
            from geomail import api
            return api.handle(context, environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/metrics":
            content_type, body = metrics.exposition()
            return _answer(start_response, "200 OK", body, content_type)
        if path == "/health":
            problems = health_problems(context)
            if problems:
                return _answer(start_response, "503 Service Unavailable",
                               ("\n".join(problems) + "\n").encode())
            return _answer(start_response, "200 OK", b"ok\n")
        return _answer(start_response, "404 Not Found", b"/metrics or /health\n")
    return app


def health_problems(context):
    """Every reason this host should not get traffic now (empty: healthy)."""
    import gevent
    problems = []
    master = httpstatus.problem()
    if master:
        problems.append(master)
    checks = (("store", context.db.ping),
              ("blob store", lambda: context.blobs.ensure_bucket(create=False)))
    for name, check in checks:
        try:
            with gevent.Timeout(CHECK_TIMEOUT):
                check()
        except gevent.Timeout:
            problems.append(f"{name}: no answer within {CHECK_TIMEOUT:.0f} s")
        except Exception as exc:  # noqa: BLE001 - any failure is a reason to report
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
    return problems


def _answer(start_response, status, body, content_type="text/plain; charset=utf-8"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
