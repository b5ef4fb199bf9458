"""Every SMTP reply geomail sends, with its enhanced status code (RFC 3463).

Handlers name a reply from this table instead of writing literals, so the
codes stay consistent and can be reviewed in one place.
"""

import functools

from geomail import metrics
from geomail.errors import PERMANENT

REPLIES = {
    # 2xx
    "ok": (250, "2.0.0", "OK"),
    "sender_ok": (250, "2.1.0", "Sender OK"),
    "recipient_ok": (250, "2.1.5", "Recipient OK"),
    "queued": (250, "2.0.0", "OK: stored as {token}"),
    "chunk_ok": (250, "2.0.0", "{size} octets received"),
    "bye": (221, "2.0.0", "Bye"),
    "vrfy": (252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
    "help": (214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS"),
    "tls_go": (220, "2.0.0", "Ready to start TLS"),
    # 3xx
    "data_go": (354, None, "End data with <CR><LF>.<CR><LF>"),
    # 4xx: try again later
    "too_many_errors": (421, "4.7.0", "Too many errors, closing connection"),
    "too_many_connections": (421, "4.7.0", "Too many connections, try again later"),
    "timeout": (421, "4.4.2", "Timeout, closing connection"),
    "shutting_down": (421, "4.3.2", "Server shutting down, try again later"),
    "storage_failed": (451, "4.3.0", "Temporary storage failure, try again later"),
    "lookup_failed": (451, "4.3.0", "Temporary failure looking up the recipient, try again later"),
    "too_many_recipients": (452, "4.5.3", "Too many recipients"),
    # RFC 3463 X.2.2 "mailbox full": at RCPT, the account holds its quota already (RFC 9208)
    "mailbox_full": (452, "4.2.2", "Mailbox full"),
    "tls_unavailable": (454, "4.7.0", "TLS not available"),
    # 5xx: permanent
    "unknown_command": (500, "5.5.1", "Command unrecognized"),
    "line_too_long": (500, "5.5.2", "Line too long"),
    "syntax": (501, "5.5.4", "Syntax error in parameters or arguments"),
    "bad_sender": (501, "5.1.7", "Bad sender address syntax: {reason}"),
    "bad_recipient": (501, "5.1.3", "Bad recipient address syntax: {reason}"),
    "not_implemented": (502, "5.5.1", "Command not implemented"),
    "need_helo": (503, "5.5.1", "Send EHLO or HELO first"),
    "need_mail": (503, "5.5.1", "Need MAIL command"),
    "nested_mail": (503, "5.5.1", "Nested MAIL command"),
    "need_rcpt": (503, "5.5.1", "Need RCPT command"),
    "data_after_bdat": (503, "5.5.1", "DATA not allowed after BDAT"),
    "bdat_failed": (503, "5.5.1", "Transaction already failed, send RSET"),
    "tls_active": (503, "5.5.1", "TLS already active"),
    "unknown_parameter": (555, "5.5.4", "Unsupported parameter {name}"),
    "bad_parameter": (501, "5.5.4", "Bad value for {name}"),
    "user_unknown": (550, "5.1.1", "User unknown"),
    "relay_denied": (550, "5.7.1", "Relay access denied"),
    "too_big": (552, "5.3.4", "Message size exceeds fixed maximum message size"),
    # this message (its SIZE parameter, or its bytes after DATA) would pass a recipient's quota
    "over_quota": (552, "5.2.2", "Message would exceed the mailbox quota of {address}"),
    "utf8_required": (553, "5.6.7", "Non-ASCII address requires SMTPUTF8"),
    "no_valid_recipients": (554, "5.5.1", "No valid recipients"),
    # a storage failure that will recur on retry (geomail.errors.PERMANENT): RFC 3463
    # X.6.0 "other or undefined media error" (the content is the cause), X.3.4
    # "message too big for system" when it is the stored form's size
    "storage_refused": (554, "5.6.0", "Message content cannot be stored, do not retry"),
    "too_big_to_store": (552, "5.3.4", "Message too big for system"),
}


def storage_failure(failed):
    """The reply to a DeliveryFailed: permanent (5xx) only when a retry fails the same way.

    TEMPORARY and BUG both get 451: a bug may be fixed before the sender gives up.
    """
    if failed.kind != PERMANENT:
        return reply("storage_failed")
    return reply("too_big_to_store" if failed.too_big else "storage_refused")


_RENDERED = {}    # reply name -> wire bytes of a reply without fields, rendered once


def reply(reply_name, **fields):
    """The wire bytes of reply `reply_name`; {fields} in its text are filled in."""
    code, enhanced, text = REPLIES[reply_name]
    if code >= 400:
        metrics.get().smtp_refused.labels(reply_name).inc()
    if fields:
        return format_reply(code, enhanced, text.format(**fields))
    rendered = _RENDERED.get(reply_name)
    if rendered is None:
        rendered = _RENDERED[reply_name] = format_reply(code, enhanced, text)
    return rendered


@functools.lru_cache(maxsize=4)
def greeting(hostname):
    """The 220 banner, rendered once."""
    return format_reply(220, None, f"{hostname} ESMTP geomail")


@functools.lru_cache(maxsize=8)
def ehlo_keywords(max_size, starttls):
    """The EHLO reply's lines after the first, rendered once (RFC 5321 4.1.1.1)."""
    keywords = ["PIPELINING", f"SIZE {max_size}", "8BITMIME", "ENHANCEDSTATUSCODES",
                "SMTPUTF8", "CHUNKING"] + (["STARTTLS"] if starttls else []) + ["HELP"]
    return "".join(f"250-{k}\r\n" for k in keywords[:-1]).encode() + b"250 HELP\r\n"


def format_reply(code, enhanced, text):
    """A possibly multi-line reply: 'code-...' lines, then 'code ...'."""
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines):
        sep = " " if index == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{enhanced} {line}\r\n" if enhanced else f"{code}{sep}{line}\r\n")
    return "".join(out).encode("utf-8")
