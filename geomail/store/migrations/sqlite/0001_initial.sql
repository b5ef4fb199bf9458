-- geomail schema version 1 for the embedded store (SQLite): the tables of
-- ../0001_initial.sql, column for column, in SQLite's types.  The MySQL file
-- explains each column; this one notes only what differs:
-- - INTEGER PRIMARY KEY AUTOINCREMENT for ids (never reused, as InnoDB's);
-- - DATETIME values are UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (they sort as they
--   compare); the declared type DATETIME lets geomail/store/sqlite.py read them back;
-- - SQLite does not enforce VARCHAR lengths: CHECK constraints keep the ones
--   the code relies on, so a value MySQL would refuse is refused here too.
-- Statements end with ';' at the end of a line (migrate.py splits on that).

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    address         TEXT NOT NULL CHECK (length(address) <= 320),
    domain          TEXT NOT NULL CHECK (length(domain) <= 255),
    password_hash   TEXT NULL,
    quota_bytes     INTEGER NULL,
    created_at      DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (address)
);
CREATE INDEX accounts_domain ON accounts (domain);

CREATE TABLE uidvalidity_counter (
    id              INTEGER NOT NULL PRIMARY KEY,
    next_value      INTEGER NOT NULL
);

INSERT INTO uidvalidity_counter (id, next_value) VALUES (1, 1);

CREATE TABLE mailboxes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) <= 512),
    special_use     TEXT NULL,
    uidvalidity     INTEGER NOT NULL,
    uidnext         INTEGER NOT NULL DEFAULT 1,
    highestmodseq   INTEGER NOT NULL DEFAULT 1,
    message_count   INTEGER NOT NULL DEFAULT 0,
    unseen_count    INTEGER NOT NULL DEFAULT 0,
    first_recent_uid INTEGER NOT NULL DEFAULT 1,
    total_size      INTEGER NOT NULL DEFAULT 0,
    keywords        TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (account_id, name)
);
CREATE INDEX mailboxes_account_special_use ON mailboxes (account_id, special_use);

CREATE TABLE subscriptions (
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) <= 512),
    PRIMARY KEY (account_id, name)
);

CREATE TABLE message_contents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    raw             BLOB NOT NULL,
    segments        TEXT NOT NULL,
    size            INTEGER NOT NULL,
    header_size     INTEGER NOT NULL,
    envelope        TEXT NOT NULL,
    bodystructure   TEXT NOT NULL,
    body            TEXT NOT NULL,
    text_plain      TEXT NULL,
    text_html       TEXT NULL,
    refcount        INTEGER NOT NULL DEFAULT 0,
    created_at      DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX message_contents_orphans ON message_contents (refcount);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid             INTEGER NOT NULL,
    modseq          INTEGER NOT NULL,
    content_id      INTEGER NOT NULL REFERENCES message_contents (id),
    seen            INTEGER NOT NULL DEFAULT 0,
    answered        INTEGER NOT NULL DEFAULT 0,
    flagged         INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    draft           INTEGER NOT NULL DEFAULT 0,
    keywords        TEXT NOT NULL DEFAULT '',
    internal_date   DATETIME NOT NULL,
    rfc822_size     INTEGER NOT NULL,
    trace_headers   BLOB NOT NULL,
    message_id      TEXT NULL CHECK (length(message_id) <= 255),
    date_sent       DATETIME NULL,
    from_addr       TEXT NULL CHECK (length(from_addr) <= 1000),
    to_addr         TEXT NULL CHECK (length(to_addr) <= 1000),
    cc_addr         TEXT NULL CHECK (length(cc_addr) <= 1000),
    subject         TEXT NULL CHECK (length(subject) <= 1000),
    in_reply_to     TEXT NULL CHECK (length(in_reply_to) <= 255),
    references_ids  TEXT NULL,
    sort_subject    TEXT NULL,
    sort_from       TEXT NULL,
    sort_to         TEXT NULL,
    sort_cc         TEXT NULL,
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_mailbox_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_mailbox_seen ON messages (mailbox_id, seen, uid);
CREATE INDEX messages_mailbox_deleted ON messages (mailbox_id, deleted, uid);
CREATE INDEX messages_mailbox_internal_date ON messages (mailbox_id, internal_date);
CREATE INDEX messages_mailbox_date_sent ON messages (mailbox_id, date_sent);
CREATE INDEX messages_mailbox_message_id ON messages (mailbox_id, message_id);
CREATE INDEX messages_content ON messages (content_id);

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id      INTEGER NOT NULL REFERENCES message_contents (id) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,
    part_number     TEXT NOT NULL CHECK (length(part_number) <= 64),
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

CREATE TABLE expunged (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid             INTEGER NOT NULL,
    modseq          INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_mailbox_modseq ON expunged (mailbox_id, modseq);
