"""What the master tells /health: how many workers it runs, and when it last said so.

The master writes a small JSON file into the metrics directory on every turn
of its loop (about once a second); a worker answering /health reads it.  A
file older than STALE seconds means the master is stuck or gone.
"""

import json
import os
import time

from geomail.metrics import MULTIPROC_ENV

FILE = "master.json"
STALE = 10.0


def _path():
    directory = os.environ.get(MULTIPROC_ENV)
    return os.path.join(directory, FILE) if directory else None


def write(workers, target):
    path = _path()
    if path is None:
        return
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as handle:
        json.dump({"workers": workers, "target": target, "time": time.time(),
                   "pid": os.getpid()}, handle)
    os.replace(temporary, path)


def problem():
    """None when the master runs all its workers, else what is wrong (for a 503)."""
    path = _path()
    if path is None:
        return "no master status (not started by the geomail master)"
    try:
        with open(path) as handle:
            status = json.load(handle)
    except (OSError, ValueError):
        return "the master has not reported yet"
    age = time.time() - status["time"]
    if age > STALE:
        return f"the master has not reported for {age:.0f} s"
    if status["workers"] < status["target"]:
        return f"the master runs {status['workers']} of {status['target']} workers"
    return None
