-- Emails owed: written by `wal::apply` from the log's booking entries (a confirmation, a
-- cancellation), so every node owes the same; `sent_at` is set by the `mail_sent` entry the
-- master writes once the SMTP server took the message. `message_id` is stable (derived
-- from the booking code and the kind), the same on every try and every master.
CREATE TABLE outbox (
    message_id VARCHAR(128) NOT NULL PRIMARY KEY,
    booking_code CHAR(8) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    created_at DATETIME NOT NULL,
    sent_at DATETIME NULL,
    KEY outbox_unsent (sent_at, created_at)
);
