"""``geomail-admin fsck``: reconcile the bucket with the attachments table, both ways.

Finds, in the configured bucket:

- ``orphan``: an object no attachments row names and no intent row covers
  (a leak: nothing in geomail will ever read or remove it);
- ``missing``: an attachments row whose object does not exist (a message
  that can no longer be read whole; reported, never deleted: only a person
  can decide what to do with the message);
- ``upload``: a multipart upload open for longer than ``older_than``;
- ``intent``: an intent row older than ``older_than`` (the janitor should
  have settled it; its writer is gone).

``--repair`` removes orphans (through the one discard path: intent row,
object, row), aborts old uploads and settles old intents, each after
checking, with a locking read, that no committed attachments row names the
object.  Reads are ordered so that a delivery committing meanwhile is never
taken for a leak: objects are listed first, then the intent rows, then the
attachments rows (an object listed is covered by its intent until the commit
that adds its row); candidates are checked again on their own before they
are reported.
"""

import datetime
from dataclasses import dataclass

from geomail.blobs.errors import BlobStoreError
from geomail.store import intents


@dataclass
class Problem:
    kind: str            # orphan, missing, upload, intent
    key: str
    size: int = None
    age: float = None    # seconds
    detail: str = ""
    repaired: bool = False
    upload_id: str = None  # kind upload: what abort_upload takes (may contain spaces)


def check(db, store, older_than):
    """[Problem] of the bucket, without changing anything."""
    now = datetime.datetime.now(datetime.timezone.utc)
    objects = {o.key: o for o in store.list_objects()}
    uploads = store.open_uploads()
    pending = intents.keys_with_intent(db, store.bucket)
    rows = dict(intents.attachment_keys(db, store.bucket))
    problems = []
    for key in sorted(set(objects) - set(rows) - set(pending)):
        if intents.referenced(db, store.bucket, key) or intents.by_keys(db, [key]):
            continue                                  # committed or begun since we looked
        if not store.exists(key):
            continue                                  # removed since we looked
        item = objects[key]
        problems.append(Problem("orphan", key, item.size, _age(now, item.last_modified),
                                "no attachments row, no intent"))
    for key in sorted(set(rows) - set(objects)):
        if not store.exists(key):
            problems.append(Problem("missing", key, rows[key], None, "attachments row, no object"))
    for upload in sorted(uploads, key=lambda u: (u.key, u.upload_id)):
        age = _age(now, upload.initiated)
        if age is None or age >= older_than:
            problems.append(Problem("upload", upload.key, None, age,
                                    f"open multipart upload {upload.upload_id}",
                                    upload_id=upload.upload_id))
    for key, (host, pid, age) in sorted(pending.items()):
        if age >= older_than:
            problems.append(Problem("intent", key, None, age, f"intent of {host} pid {pid}"))
    return problems


def repair(db, store, problems, host, pid):
    """Remove the leaks among problems (marks them repaired); missing objects stay reported."""
    from geomail.janitor import discard
    uploads = {}
    for problem in problems:
        if problem.kind == "upload":
            uploads.setdefault(problem.key, []).append(problem)
    for problem in problems:
        try:
            if problem.kind == "orphan":
                if not (intents.referenced(db, store.bucket, problem.key)
                        or intents.by_keys(db, [problem.key])):
                    problem.repaired = not discard(db, store, [problem.key], host, pid)
            elif problem.kind == "upload":
                store.abort_upload(problem.key, problem.upload_id)
                problem.repaired = True
            elif problem.kind == "intent":
                problem.repaired = _settle_intent(db, store, problem.key)
        except BlobStoreError as exc:
            problem.detail += f" (repair failed: {exc})"
    return problems


def _settle_intent(db, store, key):
    """Remove an old intent's object (unless a committed row owns it), then the intent."""
    for row_id, bucket, row_key in intents.by_keys(db, [key]):
        if bucket != store.bucket:
            continue
        state = intents.claim(db, row_id, bucket, row_key)
        if state == "remove":
            store.remove(row_key)
        if state != "gone":
            intents.forget(db, [row_id])
    return True


def _age(now, when):
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (now - when).total_seconds())


def render(problems, out):
    """The table fsck prints, and a summary line."""
    out.write(f"{'KIND':<8} {'SIZE':>12} {'AGE':>8} {'STATE':<9} KEY / DETAIL\n")
    for p in problems:
        size = "" if p.size is None else str(p.size)
        age = "" if p.age is None else _human_age(p.age)
        state = "repaired" if p.repaired else "found"
        out.write(f"{p.kind:<8} {size:>12} {age:>8} {state:<9} {p.key}  ({p.detail})\n")
    repaired = sum(1 for p in problems if p.repaired)
    counts = ", ".join(f"{kind} {sum(1 for p in problems if p.kind == kind)}"
                       for kind in ("orphan", "missing", "upload", "intent"))
    out.write(f"{len(problems)} problem(s) ({counts}); {repaired} repaired\n")


def _human_age(seconds):
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
