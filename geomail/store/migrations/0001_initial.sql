-- geomail schema version 1: the whole storage model (docs/DESIGN.md "Storage model").
-- Designed for IMAP4rev1 plus CONDSTORE/QRESYNC, SORT, THREAD, QUOTA, ESEARCH
-- and SPECIAL-USE without rework. InnoDB, utf8mb4; utf8mb4_bin wherever case
-- (or exact bytes) matters, utf8mb4_unicode_ci where search is case-insensitive.
-- Statements end with ';' at the end of a line (migrate.py splits on that).

CREATE TABLE accounts (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- lower-cased by the code; _bin so the unique key is exact, not collation-folded
    address         VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    domain          VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- "$scrypt$..." (geomail.passwords); NULL: the account cannot log in
    password_hash   VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
    -- RFC 9208 QUOTA STORAGE limit; NULL: unlimited
    quota_bytes     BIGINT UNSIGNED NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY accounts_address (address),
    KEY accounts_domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The next UIDVALIDITY to hand out, for the whole database: strictly
-- increasing and at least the Unix time of allocation, so a mailbox name
-- deleted and created again (even with its account) never gets a value a
-- client has seen for it (RFC 3501 2.3.1.1), and a database rebuilt from a
-- backup still hands out values above any earlier one. Only mailbox creation
-- takes this row lock, which is rare enough not to matter.
CREATE TABLE uidvalidity_counter (
    id              TINYINT UNSIGNED NOT NULL,
    next_value      INT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

INSERT INTO uidvalidity_counter (id, next_value) VALUES (1, 1);

CREATE TABLE mailboxes (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id      BIGINT UNSIGNED NOT NULL,
    -- UTF-8 (IMAP modified UTF-7 is converted at the protocol edge), delimiter '/',
    -- case-sensitive; INBOX is always stored as 'INBOX' (RFC 3501 5.1)
    name            VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- RFC 6154: '\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive', '\\All', '\\Flagged'
    special_use     VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
    uidvalidity     INT UNSIGNED NOT NULL,
    -- the UID the next message gets; only ever grows (the row lock on this
    -- mailbox serialises allocation across workers and hosts)
    uidnext         INT UNSIGNED NOT NULL DEFAULT 1,
    -- RFC 7162: highest modseq of any change (append, flag change, expunge)
    highestmodseq   BIGINT UNSIGNED NOT NULL DEFAULT 1,
    message_count   INT UNSIGNED NOT NULL DEFAULT 0,
    unseen_count    INT UNSIGNED NOT NULL DEFAULT 0,
    -- messages with uid >= first_recent_uid are \Recent for the next session
    -- that SELECTs the mailbox; that session moves it to uidnext (RFC 3501 2.3.2)
    first_recent_uid INT UNSIGNED NOT NULL DEFAULT 1,
    -- sum of rfc822_size, for QUOTA and STATUS SIZE (RFC 8438)
    total_size      BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- keywords ever set in this mailbox, space separated: the FLAGS response
    keywords        TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY mailboxes_account_name (account_id, name),
    KEY mailboxes_account_special_use (account_id, special_use),
    CONSTRAINT mailboxes_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Subscriptions live apart from mailboxes: RFC 3501 6.3.6/6.3.9 and RFC 5258
-- let a client subscribe to a name that does not exist (or no longer does),
-- and LIST-EXTENDED must report it as \Subscribed \NonExistent.
CREATE TABLE subscriptions (
    account_id      BIGINT UNSIGNED NOT NULL,
    name            VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (account_id, name),
    CONSTRAINT subscriptions_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per received message, shared by every copy (several local
-- recipients, COPY, MOVE). Trace headers are per message row, not here.
CREATE TABLE message_contents (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- every byte that is not an attachment body, in order (CRLF line endings)
    raw             LONGBLOB NOT NULL,
    -- JSON list describing how to rebuild the message: byte ranges of raw and
    -- attachment references with their re-encoding, with sizes and offsets
    segments        LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- size of the rebuilt message without trace headers
    size            BIGINT UNSIGNED NOT NULL,
    -- length of the top-level header block including the blank line
    header_size     INT UNSIGNED NOT NULL,
    -- cached IMAP forms (RFC 3501 7.4.2), computed once at delivery
    envelope        MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    bodystructure   MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    body            MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- decoded text, for SEARCH BODY/TEXT and any future web view
    text_plain      LONGTEXT NULL,
    text_html       LONGTEXT NULL,
    -- number of messages rows that refer to this content; the content and its
    -- attachments (rows and S3 objects) go when it reaches 0
    refcount        INT UNSIGNED NOT NULL DEFAULT 0,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY message_contents_orphans (refcount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE messages (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    mailbox_id      BIGINT UNSIGNED NOT NULL,
    uid             INT UNSIGNED NOT NULL,
    modseq          BIGINT UNSIGNED NOT NULL,
    content_id      BIGINT UNSIGNED NOT NULL,
    seen            TINYINT(1) NOT NULL DEFAULT 0,
    answered        TINYINT(1) NOT NULL DEFAULT 0,
    flagged         TINYINT(1) NOT NULL DEFAULT 0,
    deleted         TINYINT(1) NOT NULL DEFAULT 0,
    draft           TINYINT(1) NOT NULL DEFAULT 0,
    -- keywords inline, space separated: flags are read with every row (FETCH
    -- FLAGS, view catch-up) and a join per message would cost more than the
    -- rare SEARCH KEYWORD scan within one mailbox
    keywords        TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    internal_date   DATETIME(6) NOT NULL,
    -- includes trace_headers (what FETCH RFC822.SIZE reports)
    rfc822_size     BIGINT UNSIGNED NOT NULL,
    -- Return-Path/Received prepended by this server for this recipient
    trace_headers   BLOB NOT NULL,
    -- indexed header fields, decoded (RFC 2047) and cut to the column size;
    -- SEARCH falls back to the stored header block for longer values
    message_id      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    date_sent       DATETIME NULL,
    from_addr       VARCHAR(1000) NULL,
    to_addr         VARCHAR(1000) NULL,
    cc_addr         VARCHAR(1000) NULL,
    subject         VARCHAR(1000) NULL,
    in_reply_to     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    -- THREAD=REFERENCES (RFC 5256): message-ids of the References header
    references_ids  TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    -- SORT keys (RFC 5256 2.1-2.3): base subject, first addr-mailbox of From/To/Cc
    sort_subject    VARCHAR(255) NULL,
    sort_from       VARCHAR(255) NULL,
    sort_to         VARCHAR(255) NULL,
    sort_cc         VARCHAR(255) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY messages_mailbox_uid (mailbox_id, uid),
    -- CONDSTORE/QRESYNC: FETCH CHANGEDSINCE, SEARCH MODSEQ, view catch-up
    KEY messages_mailbox_modseq (mailbox_id, modseq),
    -- first unseen (SELECT's [UNSEEN n]), SEARCH UNSEEN, EXPUNGE of \Deleted
    KEY messages_mailbox_seen (mailbox_id, seen, uid),
    KEY messages_mailbox_deleted (mailbox_id, deleted, uid),
    -- SORT ARRIVAL/DATE, SEARCH BEFORE/SINCE/SENTBEFORE/SENTSINCE
    KEY messages_mailbox_internal_date (mailbox_id, internal_date),
    KEY messages_mailbox_date_sent (mailbox_id, date_sent),
    -- THREAD and duplicate detection
    KEY messages_mailbox_message_id (mailbox_id, message_id),
    KEY messages_content (content_id),
    CONSTRAINT messages_mailbox FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id) ON DELETE CASCADE,
    CONSTRAINT messages_content FOREIGN KEY (content_id) REFERENCES message_contents (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE attachments (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    content_id      BIGINT UNSIGNED NOT NULL,
    -- position among this content's attachments (the order of segments)
    idx             INT UNSIGNED NOT NULL,
    -- IMAP part specifier, e.g. '2' or '1.3'
    part_number     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    filename        VARCHAR(1000) NULL,
    -- the name as used in the object key: no '/', no control characters, bounded
    safe_filename   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    content_type    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    transfer_encoding VARCHAR(32) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    decoded_size    BIGINT UNSIGNED NOT NULL,
    sha256          CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- how the encoded form is rebuilt exactly (base64 line length, line
    -- ending, trailing newline, or the original encoded bytes' location)
    encoding        LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    bucket          VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    object_key      VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY attachments_content_idx (content_id, idx),
    UNIQUE KEY attachments_object (bucket, object_key),
    CONSTRAINT attachments_content FOREIGN KEY (content_id) REFERENCES message_contents (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The change log: expunged UIDs with the modseq of the expunge, so sessions
-- (and QRESYNC's VANISHED, RFC 7162 3.2.10) learn what disappeared.
CREATE TABLE expunged (
    mailbox_id      BIGINT UNSIGNED NOT NULL,
    uid             INT UNSIGNED NOT NULL,
    modseq          BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (mailbox_id, uid),
    KEY expunged_mailbox_modseq (mailbox_id, modseq),
    CONSTRAINT expunged_mailbox FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
