-- geomail schema version 2: what delivery needs beyond version 1.
--
-- message_contents.parts: the MIME part tree with byte offsets (JSON), so that
-- IMAP serves BODY[1.2], BODY[1.2.MIME], HEADER.FIELDS ... as byte ranges of
-- the rebuilt message without parsing it again.
--
-- pending_objects: an intent log of S3 objects being written by a delivery
-- that has not committed yet. A row is inserted (autocommit) before an upload
-- starts and deleted in the delivery's own transaction; a row that outlives
-- its writer (the worker was killed) tells the janitor which object or
-- multipart upload to remove, so a crash never leaves an object nothing refers to.

ALTER TABLE message_contents ADD COLUMN parts LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL AFTER segments;

CREATE TABLE pending_objects (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    bucket          VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    object_key      VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- the writer: host name and pid, so a worker can tell a dead neighbour's rows
    owner_host      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    owner_pid       INT UNSIGNED NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY pending_objects_owner (owner_host, owner_pid),
    KEY pending_objects_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
