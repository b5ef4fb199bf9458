"""CATENATE (RFC 4469): a message built from TEXT literals and URLs of stored parts.

``parts`` is a generator of byte chunks for ``geomail.ingest.store_message``:
it reads the cat-part list from the parser as the store consumes it, so a
TEXT literal streams like an ordinary APPEND literal and a URL's part
streams from the store (MySQL bytes and S3 ranges, geomail/reader.py),
never held whole.  The running size is checked before each part is read:
a TEXT literal larger than what APPENDLIMIT leaves gets NO [TOOBIG] before
its '+' (RFC 7889), and so does a URL whose part would not fit (RFC 4469
§3 names TOOBIG for this).  A URL that names nothing of this account's gets
NO [BADURL url] (§3); nothing is stored then.
"""

from geomail.imap import imapurl
from geomail.imap import response as R
from geomail.imap.body import Message
from geomail.imap.errors import CommandError
from geomail.imap.fetch import section_spec
from geomail.imap.parser import ParseError, Parser
from geomail.store import messages
from geomail.store.errors import InvalidMailboxName

MAX_PARTS = 1000       # cat-parts in one message: a long list is a client bug, not a message


class TooBig(CommandError):
    def __init__(self, limit):
        super().__init__(f"The message would be larger than the limit of {limit}", R.TOOBIG)


def parts(session, p, limit):
    """Chunks of the message of 'CATENATE (' cat-part *(SP cat-part) ')' (after CATENATE SP)."""
    p.expect("(")
    total = 0
    count = 0
    while not p.take(")"):
        if count:
            p.sp()
        count += 1
        if count > MAX_PARTS:
            raise CommandError(f"More than {MAX_PARTS} parts", R.LIMIT)
        if p.take("TEXT "):
            size, chunks = p.literal_stream(limit - total, literal8=True)
            total += size
            yield from chunks
        elif p.take("URL "):
            url = p.astring()
            literal = resolve(session, url)
            if total + literal.size > limit:
                raise TooBig(limit)
            total += literal.size
            yield from literal.chunks
        else:
            raise ParseError(f"expected TEXT or URL {p._where()}")
    if not count:
        raise ParseError("CATENATE needs at least one part")


def resolve(session, url):
    """The Literal (size, chunks) a URL names; CommandError [BADURL url] if it names nothing."""
    try:
        ref = imapurl.parse(url, session.context.hostname, session.account.address)
        literal = _lookup(session, ref)
    except imapurl.BadUrl as exc:
        raise CommandError(f"Cannot use this URL: {exc}", R.BADURL,
                           code_args=imapurl.echo(url)) from None
    return literal


def _lookup(session, ref):
    db = session.context.db
    if ref.mailbox is None:                  # ";UID=n": the selected mailbox is the base
        if session.view is None:
            raise imapurl.BadUrl("a relative URL needs a selected mailbox")
        name = session.view.name
    else:
        try:
            name = ref.mailbox.decode("utf-8")    # RFC 5092 §3.2: UTF-8, percent-encoded
        except UnicodeDecodeError:
            raise imapurl.BadUrl("mailbox name is not UTF-8") from None
    try:
        mailbox = messages.find_mailbox(db, session.account.id, name)
    except InvalidMailboxName:
        mailbox = None
    if mailbox is None:
        raise imapurl.BadUrl("no such mailbox")
    if ref.uidvalidity is not None and ref.uidvalidity != mailbox.uidvalidity:
        raise imapurl.BadUrl("UIDVALIDITY does not match")
    rows = list(messages.fetch_rows(db, mailbox.id, [(ref.uid, ref.uid)], ["content"]))
    if not rows:
        raise imapurl.BadUrl("no such message")
    literal = Message(session.context, rows[0]).section(_section_of(ref.section), _partial(ref))
    if literal is None:
        raise imapurl.BadUrl("no such part")
    return literal


def _section_of(spec):
    """A body.Section from a URL's section text, by the FETCH grammar (RFC 5092 §3.4)."""
    p = Parser(None, None, 0)
    p.line = b"[" + spec + b"]"
    try:
        section = section_spec(p)
        p.end()
    except ParseError:
        raise imapurl.BadUrl("invalid section") from None
    return section


def _partial(ref):
    if ref.partial is None:
        return None
    offset, length = ref.partial
    return offset, length if length is not None else 2 ** 63
