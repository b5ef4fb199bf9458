"""The SMTP side: sessions (RFC 5321) and delivery into the store."""
