"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: what ``ENABLE IMAP4rev2`` switches.

Both revisions are advertised; a session is IMAP4rev1 until the client
enables IMAP4rev2 (RFC 9051 §6.3.1).  From then on, per Appendix E:

- no \\Recent: no RECENT response, no \\Recent in FLAGS, and SELECT does not
  claim new messages as \\Recent from IMAP4rev1 sessions (items 8, 15);
- SEARCH without RETURN answers ESEARCH, as RETURN (ALL) (item 9);
- SELECT/EXAMINE send no [UNSEEN n] and do send an untagged LIST of the
  mailbox ([CLOSED], §6.3.2, is sent to every session: select.py);
- mailbox names are UTF-8 both ways, not modified UTF-7 (§5.1, item 3);
- LIST says \\NonExistent for a name that is only implied by its inferiors.

STATUS DELETED and SIZE (item 19), BINARY (item 4) and UIDPLUS, MOVE,
ESEARCH ... (item 1) are there in both revisions.
"""

from geomail.imap import response as R
from geomail.store import messages

CAPABILITY = "IMAP4rev2"


def enabled(session):
    return CAPABILITY in session.enabled


def switch_on(session):
    """ENABLE IMAP4rev2: names become UTF-8; a selected mailbox drops its \\Recent."""
    session.parser.utf8 = True
    if session.view is not None:
        session.view.stop_recent()


def list_line(session, mailbox):
    """The untagged LIST of the mailbox SELECT opened, with the attributes LIST gives it
    (RFC 9051 §6.3.2: "The list of mailbox attributes MUST be accurate")."""
    children = messages.has_inferiors(session.context.db, session.account.id, mailbox.name)
    attrs = ["\\HasChildren" if children else "\\HasNoChildren"]
    if mailbox.special_use:
        attrs.append(mailbox.special_use)
    session.untagged(b"LIST (" + " ".join(attrs).encode() + b') "/" '
                     + R.mailbox(mailbox.name, utf8=True))
