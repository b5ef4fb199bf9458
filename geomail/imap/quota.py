"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, and the check APPEND and COPY make.

Each account has one quota root, named "" (RFC 9208's own examples), holding
every mailbox of the account, with the resources STORAGE (KiB) and MESSAGE.
A root is reported only while at least one of its limits is set: a QUOTA
response must list at least one resource, and "no limit" has no number.
Limits are an operator's business (``geomail-admin quota set``), so
SETQUOTA answers NO [NOPERM] after checking its syntax.
"""

from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.imap.names import mailbox_arg
from geomail.store import messages
from geomail.store.quota import get_quota

ROOT = ""


def _quota_response(quota):
    items = " ".join(f"{name} {usage} {limit}" for name, usage, limit in quota.resources())
    return b"QUOTA " + R.astring(ROOT) + b" (" + items.encode("ascii") + b")"


def _quota(session):
    return get_quota(session.context.db, session.account.id)


def getquota(session, p, tag):
    """GETQUOTA root (RFC 9208 §4.2)."""
    root = p.astring_str()
    p.end()
    quota = _quota(session)
    if root != ROOT or quota is None or not quota.limited:
        raise CommandError("No such quota root", R.NONEXISTENT)
    session.untagged(_quota_response(quota))


def getquotaroot(session, p, tag):
    """GETQUOTAROOT mailbox (RFC 9208 §4.3): the mailbox's roots, then each root's QUOTA."""
    name = mailbox_arg(p)
    p.end()
    mailbox = messages.find_mailbox(session.context.db, session.account.id, name)
    if mailbox is None:
        raise CommandError(f"Mailbox {name} does not exist", R.NONEXISTENT)
    quota = _quota(session)
    if quota is None or not quota.limited:
        session.untagged(b"QUOTAROOT " + R.mailbox(mailbox.name))
        return
    session.untagged(b"QUOTAROOT " + R.mailbox(mailbox.name) + b" " + R.astring(ROOT))
    session.untagged(_quota_response(quota))


def setquota(session, p, tag):
    """SETQUOTA root (resource limit ...) (RFC 9208 §4.1): parsed, then refused."""
    p.astring()
    p.sp()
    p.expect("(")
    first = True
    while not p.take(")"):
        if not first:
            p.sp()
        first = False
        p.atom("resource name")
        p.sp()
        p.number()
    p.end()
    raise CommandError("Quotas are set by the administrator", R.NOPERM)


def check_quota(session, count, octets, quota=None):
    """NO [OVERQUOTA] (RFC 9208 §3) when adding ``count`` messages of ``octets`` would
    pass a limit of the account (``quota``: as just read by the caller)."""
    if quota is None:
        quota = _quota(session)
    if quota is None:
        return
    resource = quota.exceeded_by(count, octets)
    if resource is not None:
        raise CommandError(f"Quota exceeded: the {resource} limit would be passed", R.OVERQUOTA)
