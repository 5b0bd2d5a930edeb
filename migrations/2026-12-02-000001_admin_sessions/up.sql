-- Admin sessions live in the database and are replicated through the log, so a logout,
-- a password change or "log out everywhere" ends them on every node. `id` is the SHA-256
-- of the session's secret (the cookie holds the secret, signed; the table never does).
CREATE TABLE admin_sessions (
    id CHAR(64) NOT NULL PRIMARY KEY,
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    ended_at DATETIME NULL,
    client_addr VARCHAR(45) NULL,
    KEY admin_sessions_open (ended_at, created_at)
);
-- The admin password once an operator changed it (an Argon2 hash); until then ADMIN_PASSWORD.
CREATE TABLE admin_credentials (
    id TINYINT NOT NULL PRIMARY KEY,
    password_hash VARCHAR(255) NOT NULL,
    changed_at DATETIME NOT NULL
);
