"""The IMAP side: sessions (RFC 3501 and extensions) over the store."""
