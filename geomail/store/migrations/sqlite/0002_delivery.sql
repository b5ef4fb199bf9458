-- geomail schema version 2 for the embedded store: message_contents.parts and the
-- intent log pending_objects (see ../0002_delivery.sql for what they hold).

ALTER TABLE message_contents ADD COLUMN parts TEXT NULL;

CREATE TABLE pending_objects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket          TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    owner_host      TEXT NOT NULL,
    owner_pid       INTEGER NOT NULL,
    created_at      DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX pending_objects_owner ON pending_objects (owner_host, owner_pid);
CREATE INDEX pending_objects_created ON pending_objects (created_at);
