#!/usr/bin/env python3
"""Regenerate the Dovecot reference answers in this directory (run by hand, as root).

    apt-get install dovecot-imapd        # Debian's Dovecot 2.3
    python3 tests/mime/dovecot/generate.py [--imap /usr/lib/dovecot/imap] [name ...]

For each message (CPython's email corpus msg_*.txt, CRLF normalised exactly
as tests/mime does, and the cases in cases.py) this writes the message into
a fresh Maildir, starts Dovecot's imap binary in PREAUTH mode on a private
config (no daemon, no network, no system service) and sends on its stdin

    a SELECT INBOX
    b FETCH 1 (ENVELOPE BODY.PEEK[])
    c LOGOUT

then the same with FETCH 1 (BODYSTRUCTURE) and with FETCH 1 (BODY), each
in its own fresh Maildir and process.  Separate runs matter: once Dovecot
has parsed a message it may cache only "plain 7bit us-ascii text" and later
build BODY/BODYSTRUCTURE from that flag in lower case ("text" "plain"
("charset" "us-ascii")) instead of as written in the header; a first fetch
always answers from the header.  It checks that BODY[] is the message byte
for byte (NUL is sent as 0x80, as Dovecot does outside BINARY) and stores
the three answers in <source>_<name>.json in the canonical form of wire.py.
The test suite (tests/mime/test_dovecot_reference.py) only reads these files.

When not run as root the imap process runs as the calling user; as root it
drops to `nobody` (Dovecot refuses mail access as root).
"""

import argparse
import glob
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

import cases   # noqa: E402
import wire    # noqa: E402
from mime_helpers import CORPUS, crlf   # noqa: E402

CONFIG = """\
protocols = imap
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
ssl = no
mail_location = maildir:{tmp}/Maildir
"""


def messages():
    """[(source, name, bytes)] in a fixed order."""
    out = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "msg_*.txt"))):
        with open(path, "rb") as f:
            out.append(("corpus", os.path.basename(path)[:-4], crlf(f.read())))
    for name, data in cases.cases():
        out.append(("case", name, data))
    return out


def reference_path(source, name):
    return os.path.join(HERE, "%s_%s.json" % (source, name))


def dovecot_version(imap):
    doveconf = os.path.join(os.path.dirname(imap), os.pardir, os.pardir, "bin", "doveconf")
    for exe in (shutil.which("dovecot"), os.path.normpath(doveconf)):
        if exe and os.path.exists(exe):
            try:
                return subprocess.run([exe, "--version"], capture_output=True, text=True,
                                      check=True).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                pass
    return "unknown"


def fetch_all(imap, data):
    """{item: canonical answer}, each item from its own fresh Maildir and process."""
    items = {}
    for what in ("ENVELOPE BODY.PEEK[]", "BODYSTRUCTURE", "BODY"):
        items.update(fetch(imap, data, what))
    return items


def fetch(imap, data, what):
    """Dovecot's answer to FETCH 1 (what) as {item: canonical}."""
    tmp = tempfile.mkdtemp(prefix="geomail-dovecot-")
    try:
        for d in ("Maildir/cur", "Maildir/new", "Maildir/tmp", "run", "state"):
            os.makedirs(os.path.join(tmp, d))
        with open(os.path.join(tmp, "Maildir/cur/1000000000.M1P1.geomail:2,S"), "wb") as f:
            f.write(data)
        with open(os.path.join(tmp, "dovecot.conf"), "w") as f:
            f.write(CONFIG.format(tmp=tmp))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": tmp}
        cmd = [imap, "-c", os.path.join(tmp, "dovecot.conf")]
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for root, dirs, files in os.walk(tmp):
                for n in dirs + files + ["."]:
                    os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
            env["USER"] = "nobody"
            cmd = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                   "--clear-groups"] + cmd
        else:
            env["USER"] = pwd.getpwuid(os.getuid()).pw_name
        script = b"a SELECT INBOX\r\nb FETCH 1 (%s)\r\nc LOGOUT\r\n" % what.encode()
        proc = subprocess.run(cmd, input=script, capture_output=True, env=env, timeout=60)
        out = proc.stdout
        if b"\r\nb OK" not in out:
            log = open(os.path.join(tmp, "dovecot.log"), "rb").read() if os.path.exists(
                os.path.join(tmp, "dovecot.log")) else b""
            raise RuntimeError("dovecot failed: %r %r %r" % (out[-2000:], proc.stderr, log))
        return parse_fetch(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_fetch(out):
    m = re.search(rb"\r\n\* 1 FETCH \(", out)
    if not m:
        raise RuntimeError("no FETCH response: %r" % out[-2000:])
    i = m.end()
    items = {}
    while True:
        if out[i:i + 1] == b")":
            break
        n = re.compile(rb"[A-Z0-9.\[\]]+ ").match(out, i)
        if not n:
            raise RuntimeError("bad FETCH item at %r" % out[i:i + 40])
        name = n.group(0)[:-1].decode()
        value, i = wire.read_value(out, n.end())
        items[name] = value
        if out[i:i + 1] == b" ":
            i += 1
    if out[i:i + 3] != b")\r\n":
        raise RuntimeError("FETCH response not terminated")
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--imap", default="/usr/lib/dovecot/imap")
    ap.add_argument("names", nargs="*", help="only these messages (e.g. msg_01 deep_nesting)")
    args = ap.parse_args()
    version = dovecot_version(args.imap)
    msgs = messages()
    wanted = set(args.names)
    if not wanted:   # a full run replaces the whole set
        for old in glob.glob(os.path.join(HERE, "*.json")):
            os.unlink(old)
    for source, name, data in msgs:
        if wanted and name not in wanted:
            continue
        items = fetch_all(args.imap, data)
        body_all = items.pop("BODY[]")
        # Dovecot sends NUL as 0x80 outside BINARY (imap-fetch-body.c)
        if wire.quote(data.replace(b"\0", b"\x80")) != body_all:
            raise RuntimeError("%s: Dovecot did not see the message byte for byte" % name)
        ref = {
            "source": source,
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "dovecot": version,
            "envelope": wire.to_json(items["ENVELOPE"]),
            "bodystructure": wire.to_json(items["BODYSTRUCTURE"]),
            "body": wire.to_json(items["BODY"]),
        }
        with open(reference_path(source, name), "w") as f:
            json.dump(ref, f, indent=1, ensure_ascii=True)
            f.write("\n")
        print("%-8s %-34s %7d bytes" % (source, name, len(data)))
    print("%d messages, Dovecot %s" % (len(wanted) or len(msgs), version))


if __name__ == "__main__":
    main()
