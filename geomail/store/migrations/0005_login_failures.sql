-- geomail schema version 5: failed logins counted across connections, workers and hosts.
--
-- One row per throttled subject: kind 'account' (the normalized user name,
-- whether or not such an account exists) or 'address' (the client's IPv4
-- address or IPv6 /64).  failures counts the attempts since window_start;
-- a row whose window has passed starts again from 1 at the next attempt.
-- Kept apart from accounts so that guesses at names that do not exist are
-- counted too, and so that the hot update touches no account row.
-- Rows of passed windows are deleted by the workers (store/logins.py).

CREATE TABLE login_failures (
    kind            VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    subject         VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    failures        INT UNSIGNED NOT NULL,
    window_start    DATETIME(6) NOT NULL,
    PRIMARY KEY (kind, subject),
    KEY login_failures_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
