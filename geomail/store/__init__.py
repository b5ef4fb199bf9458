"""The store: the one place that owns SQL and MySQL connections (imports nothing itself).

Everything above it (SMTP delivery, IMAP sessions, admin tools) calls the
functions of its modules with a ``Database``; none of them writes SQL. An
embedded SQLite implementation (docs/DESIGN.md "Two backends") is meant to be a
second implementation of these same functions.
"""
