-- geomail schema version 5 for the embedded store: failed-login counters
-- (see ../0005_login_failures.sql).

CREATE TABLE login_failures (
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL CHECK (length(subject) <= 320),
    failures        INTEGER NOT NULL,
    window_start    DATETIME NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX login_failures_window ON login_failures (window_start);
