-- Catalog imports this node ran, for the admin page's history. Not part of the write log
-- (nothing replicates it): each node keeps the jobs it ran.
CREATE TABLE import_jobs (
  id BIGINT NOT NULL PRIMARY KEY,
  -- queued | running | done | failed
  state VARCHAR(16) NOT NULL,
  -- admin | schedule
  requested_by VARCHAR(16) NOT NULL,
  queued_at DATETIME(3) NOT NULL,
  started_at DATETIME(3) NULL,
  finished_at DATETIME(3) NULL,
  theaters_done INT NOT NULL,
  theaters_total INT NULL,
  -- created / updated / unchanged per kind, as JSON
  counts TEXT NULL,
  requests INT NOT NULL,
  retries INT NOT NULL,
  lsn BIGINT NULL,
  error TEXT NULL
);
