-- geomail schema version 6 for the embedded store: the IMAP sessions logged
-- in now (see ../0006_imap_sessions.sql).

CREATE TABLE imap_sessions (
    host            TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    session         TEXT NOT NULL,
    account_id      INTEGER NOT NULL,
    address         TEXT NOT NULL,
    remote          TEXT NOT NULL,
    tls             INTEGER NOT NULL,
    started_at      DATETIME NOT NULL,
    kick            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host, pid, session)
);
CREATE INDEX imap_sessions_account ON imap_sessions (account_id);
