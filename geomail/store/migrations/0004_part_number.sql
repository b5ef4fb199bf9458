-- geomail schema version 4: IMAP part numbers of deeply nested attachments.
--
-- attachments.part_number is the IMAP part specifier ("1.1.1.2"): it names the
-- part, so it is never cut, and VARCHAR(64) refused (1406 Data too long) the
-- row of any attachment 33 or more MIME levels down, failing the delivery on
-- every retry.  The parser treats entities past MAX_DEPTH (100) levels as
-- leaves and makes at most MAX_PARTS (10,000) entities (geomail/mime/parser.py),
-- so a number has at most 100 components of at most 5 digits and a dot: 600
-- characters.  1024 leaves room; ascii, one byte a character, the row stays small.

ALTER TABLE attachments MODIFY part_number VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
