"""geomail: an SMTP and IMAP mail server storing mail in MySQL and S3."""

__version__ = "0.1.0"
