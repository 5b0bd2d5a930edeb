ALTER TABLE write_log DROP COLUMN origin;
