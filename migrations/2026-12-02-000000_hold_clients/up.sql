-- Who placed each hold (the seat-spinning limits): the client's address and a hash of its
-- session cookie. NULL for holds placed before clients were recorded.
ALTER TABLE holds ADD COLUMN client_addr VARCHAR(45) NULL, ADD COLUMN client_session CHAR(32) NULL;
