"""Fault and load at CI size: bench/fault_load.py for ~25 s (the long run is the same script).

Parallel SMTP senders of plain messages, small and multipart attachments to a
real bin/geomail on a private MariaDB and a private SeaweedFS, while workers
are killed with SIGKILL, SeaweedFS is paused and killed, every MySQL
connection is KILLed and MariaDB is killed and restarted once.  Once the
janitor has run: 0 acknowledged messages lost, 0 half-stored, 0 leaked
objects, uploads or intents.
"""

import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                     "fault_load.py")


@pytest.mark.timeout(300)
def test_faults_under_load_lose_nothing_and_leak_nothing():
    result = subprocess.run([sys.executable, BENCH, "--seconds", "25", "--senders", "4",
                             "--fault-interval", "2.5", "--seed", "8"],
                            capture_output=True, text=True, timeout=280)
    out = result.stdout
    assert "Traceback" not in result.stderr + out, result.stderr[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, out[-3000:] + result.stderr[-3000:]
    figures = json.loads(lines[-1][len("RESULT "):])
    summary = "\n".join(line for line in out.splitlines() if not line.startswith("RESULT"))
    assert figures["acknowledged"] > 20, summary         # the load really ran
    assert set(figures["faults"]) == {"worker kill -9", "SeaweedFS paused",
                                      "MySQL connections killed", "SeaweedFS kill -9",
                                      "MariaDB kill -9 and restart"}, summary
    assert figures["refused"] + figures["connection_lost"] > 0, summary   # the faults hit
    assert figures["lost"] == 0, summary
    assert figures["half_stored"] == 0, summary
    assert figures["missing_objects"] == 0, summary
    assert figures["leaked_objects"] == 0 and figures["open_uploads"] == 0, summary
    assert figures["intents_left"] == 0 and figures["janitor_settled"], summary
    assert result.returncode == 0, summary
