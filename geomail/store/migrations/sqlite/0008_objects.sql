-- geomail schema version 8 for the embedded store: save date, thread id and
-- preview (see ../0008_objects.sql).

ALTER TABLE messages ADD COLUMN save_date DATETIME NULL;
ALTER TABLE messages ADD COLUMN thread_id TEXT NULL;
CREATE INDEX messages_mailbox_save_date ON messages (mailbox_id, save_date);
CREATE INDEX messages_mailbox_thread_id ON messages (mailbox_id, thread_id);
ALTER TABLE message_contents ADD COLUMN preview TEXT NULL;
