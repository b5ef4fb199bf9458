"""The benchmarks still run: each SMTP one, at a tiny size, end to end.

Their figures are not checked here (a loaded CI machine says nothing about
speed); that they start a stack, drive it and print their report is.
"""

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def run(script, *args):
    result = subprocess.run([sys.executable, os.path.join(BENCH, script), *args],
                            capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    return result


def test_large_attachment_bench():
    result = run("smtp_large_attachment.py", "--sizes-mib", "1,9", "--runs", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "rebuilt message byte-exact: True" in result.stdout


def test_throughput_bench():
    result = run("smtp_throughput.py", "--messages", "200", "--runs", "1")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "errors: {'smtp-sink': 0, 'postfix': 0, 'geomail': 0}" in result.stdout, \
        result.stdout[-2000:]
    assert "ratio geomail/Postfix" in result.stdout, result.stdout[-2000:]


def test_idle_bench():
    result = run("imap_idle.py", "--connections", "50", "--deliveries", "1")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "PSS per idle connection" in result.stdout, result.stdout[-2000:]


def test_import_export_bench():
    result = run("import_export.py", "--messages", "200")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count("200 messages, 0 differ") == 2, result.stdout[-2000:]
