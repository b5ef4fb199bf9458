-- geomail schema version 8: SAVEDATE (RFC 8514), OBJECTID (RFC 8474), PREVIEW (RFC 8970).
--
-- messages.save_date: when the message was placed in this mailbox (delivery,
-- APPEND, the target of COPY or MOVE), unlike internal_date, which COPY keeps.
-- Rows stored before this version have NULL: FETCH SAVEDATE answers NIL for
-- them and SEARCH SAVED* compares their internal date (geomail/store/search.py).
--
-- messages.thread_id: the THREADID, a hash of the thread root's Message-ID
-- (geomail/objectids.py), computed at delivery and kept by COPY and MOVE so
-- that SEARCH THREADID is an index lookup.  NULL for older rows until a FETCH
-- or SEARCH THREADID in their mailbox computes theirs the same way.
--
-- message_contents.preview: the RFC 8970 preview (at most 256 characters of
-- the first text part); '' when the message has no text, NULL when it was
-- stored before this version and has not been asked for yet (computed then).
--
-- Columns are added at the end and nullable: an instant ALTER on MariaDB 10.3+.

ALTER TABLE messages ADD COLUMN save_date DATETIME(6) NULL, ADD COLUMN thread_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL, ADD KEY messages_mailbox_save_date (mailbox_id, save_date), ADD KEY messages_mailbox_thread_id (mailbox_id, thread_id);
ALTER TABLE message_contents ADD COLUMN preview VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
