-- The node a write came through (the follower a visitor made it on, or the master itself).
-- 0 for entries logged before origins were recorded.
ALTER TABLE write_log ADD COLUMN origin BIGINT NOT NULL DEFAULT 0 AFTER lamport;
