-- geomail schema version 4: what lets every well-formed message be stored.
--
-- attachments.part_number: the IMAP part specifier ("1.1.1.2"): it names the
-- part, so it is never cut, and VARCHAR(64) refused (1406 Data too long) the
-- row of any attachment 33 or more MIME levels down, failing the delivery on
-- every retry.  The parser treats entities past MAX_DEPTH (100) levels as
-- leaves and makes at most MAX_PARTS (5,000) entities (geomail/mime/parser.py),
-- so a number has at most 100 components of at most 4 digits and a dot: 500
-- characters.  1024 leaves room; ascii, one byte a character, the row stays small.

ALTER TABLE attachments MODIFY part_number VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;

-- message_content_chunks: the raw bytes of a long message past its header
-- block.  pymysql sends bytes as hex, so a message with more than about 8 MB
-- that is not an attachment (a long text/plain or text/html) made the content
-- row's INSERT longer than max_allowed_packet (16 MiB by default): MariaDB
-- dropped the connection and the sender got 451 on every retry.  Such a row
-- keeps only the header block in raw (SEARCH HEADER reads it there) and the
-- rest follows here in pieces under max_allowed_packet, in seq order;
-- geomail.store.contents.load_contents joins them again.

CREATE TABLE message_content_chunks (
    content_id      BIGINT UNSIGNED NOT NULL,
    seq             INT UNSIGNED NOT NULL,
    data            LONGBLOB NOT NULL,
    PRIMARY KEY (content_id, seq),
    CONSTRAINT message_content_chunks_content FOREIGN KEY (content_id) REFERENCES message_contents (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
