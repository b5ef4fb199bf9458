-- geomail schema version 3 for the embedded store: the Date: header's own
-- calendar date (see ../0003_sent_date.sql).

ALTER TABLE messages ADD COLUMN sent_date DATE NULL;
UPDATE messages SET sent_date = date(date_sent) WHERE date_sent IS NOT NULL;
CREATE INDEX messages_mailbox_sent_date ON messages (mailbox_id, sent_date);
