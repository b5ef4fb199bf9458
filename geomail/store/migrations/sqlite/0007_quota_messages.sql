-- geomail schema version 7 for the embedded store: the RFC 9208 MESSAGE limit
-- (see ../0007_quota_messages.sql).

ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NULL;
