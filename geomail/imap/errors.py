"""Typed command outcomes (mox style): syntax -> BAD, user error -> NO [CODE], server -> NO + log."""


class CommandError(Exception):
    """Ends a command with a tagged NO (or BAD) carrying an optional response code."""

    def __init__(self, text, code=None, status="NO", code_args=None):
        super().__init__(text)
        self.text = text
        self.code = code
        self.status = status
        self.code_args = code_args


class Bad(CommandError):
    """A command that parses but makes no sense here: tagged BAD."""

    def __init__(self, text, code=None):
        super().__init__(text, code, status="BAD")


class Bye(Exception):
    """End the connection after sending ``* BYE text``."""

    def __init__(self, text, code=None):
        super().__init__(text)
        self.text = text
        self.code = code
