-- geomail schema version 3: the date of the Date: header as written.
--
-- SEARCH SENTBEFORE/SENTON/SENTSINCE compare "the Date: header (disregarding
-- time and timezone)" (RFC 3501 6.4.4): the calendar date in the sender's own
-- timezone, which date_sent (the moment, in UTC) cannot give back.  Rows
-- stored before this version get the UTC date of date_sent, the best known.

ALTER TABLE messages ADD COLUMN sent_date DATE NULL AFTER date_sent;
UPDATE messages SET sent_date = DATE(date_sent) WHERE date_sent IS NOT NULL;
ALTER TABLE messages ADD KEY messages_mailbox_sent_date (mailbox_id, sent_date);
