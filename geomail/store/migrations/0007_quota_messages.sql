-- geomail schema version 7: the RFC 9208 MESSAGE resource next to STORAGE.
--
-- accounts.quota_bytes (version 1) holds the STORAGE limit in octets (set in
-- KiB, RFC 9208 counts STORAGE in units of 1024 octets); quota_messages the
-- MESSAGE limit (the last column, as in SQLite, so both list the columns alike).
-- NULL: no limit.  Usage is not stored: it is the sum of the
-- account's mailboxes' message_count and total_size (store/quota.py).

ALTER TABLE accounts ADD COLUMN quota_messages BIGINT UNSIGNED NULL;
