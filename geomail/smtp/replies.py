"""Every SMTP reply geomail sends, with its enhanced status code (RFC 3463).

Handlers name a reply from this table instead of writing literals, so the
codes stay consistent and can be reviewed in one place.
"""

REPLIES = {
    "ok": (250, "2.0.0", "OK"),
    "bye": (221, "2.0.0", "Bye"),
    "vrfy": (252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
    "help": (214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"),
    "not_implemented": (502, "5.5.1", "Command not implemented"),
    "unknown_command": (500, "5.5.1", "Command unrecognized"),
    "line_too_long": (500, "5.5.2", "Line too long"),
    "syntax": (501, "5.5.4", "Syntax error in parameters or arguments"),
    "bad_sequence": (503, "5.5.1", "Bad sequence of commands"),
    "too_many_errors": (421, "4.7.0", "Too many errors, closing connection"),
    "timeout": (421, "4.4.2", "Timeout, closing connection"),
    "shutting_down": (421, "4.3.2", "Server shutting down, try again later"),
}


def reply(name, text=None):
    """The wire bytes of reply `name`, optionally with a specific text."""
    code, enhanced, default = REPLIES[name]
    return format_reply(code, enhanced, text or default)


def format_reply(code, enhanced, text):
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines):
        sep = " " if index == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{enhanced} {line}\r\n" if enhanced else f"{code}{sep}{line}\r\n")
    return "".join(out).encode("utf-8")
