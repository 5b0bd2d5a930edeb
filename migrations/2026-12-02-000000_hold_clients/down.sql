ALTER TABLE holds DROP COLUMN client_addr, DROP COLUMN client_session;
