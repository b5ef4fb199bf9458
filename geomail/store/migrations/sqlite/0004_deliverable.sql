-- geomail schema version 4 for the embedded store: see ../0004_deliverable.sql.
--
-- attachments.part_number may hold up to 1024 characters.  SQLite cannot alter
-- a CHECK constraint in place, so the table is rebuilt with the new one (SQLite's
-- documented procedure: new table, copy, drop, rename; the transaction that
-- migrate.py runs each file in makes it all or nothing).

CREATE TABLE attachments_v4 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id      INTEGER NOT NULL REFERENCES message_contents (id) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,
    part_number     TEXT NOT NULL CHECK (length(part_number) <= 1024),
    filename        TEXT NULL,
    safe_filename   TEXT NOT NULL CHECK (length(safe_filename) <= 255),
    content_type    TEXT NOT NULL,
    transfer_encoding TEXT NOT NULL,
    decoded_size    INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    encoding        TEXT NOT NULL,
    bucket          TEXT NOT NULL CHECK (length(bucket) <= 63),
    object_key      TEXT NOT NULL CHECK (length(object_key) <= 700),
    UNIQUE (content_id, idx),
    UNIQUE (bucket, object_key)
);
INSERT INTO attachments_v4 SELECT * FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_v4 RENAME TO attachments;

CREATE TABLE message_content_chunks (
    content_id      INTEGER NOT NULL REFERENCES message_contents (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    data            BLOB NOT NULL,
    PRIMARY KEY (content_id, seq)
);
