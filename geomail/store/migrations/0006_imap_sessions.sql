-- geomail schema version 6: the IMAP sessions logged in now, on every host.
--
-- One row per logged-in session, written at login and deleted at logout or
-- disconnect by the worker that serves it (geomail/store/sessions.py), so
-- `geomail-admin who` and the management API see every host of the
-- database.  kick = 1 asks that worker to end the session: it looks for such
-- rows every few seconds.  Rows of a worker that died are deleted by the
-- next worker started on its host.

CREATE TABLE imap_sessions (
    host            VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    pid             INT UNSIGNED NOT NULL,
    session         VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    account_id      BIGINT UNSIGNED NOT NULL,
    address         VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    remote          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tls             TINYINT(1) NOT NULL,
    started_at      DATETIME(6) NOT NULL,
    kick            TINYINT(1) NOT NULL DEFAULT 0,
    PRIMARY KEY (host, pid, session),
    KEY imap_sessions_account (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
