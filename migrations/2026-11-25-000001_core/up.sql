-- Seat layouts: every theater gets one; a show keeps the layout it was created with.
CREATE TABLE layouts (
  id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(100) NOT NULL
);

CREATE TABLE seat_categories (
  id BIGINT NOT NULL PRIMARY KEY,
  layout_id BIGINT NOT NULL,
  code VARCHAR(20) NOT NULL,
  name VARCHAR(100) NOT NULL,
  price_cents INT NOT NULL,
  UNIQUE KEY uq_category (layout_id, code),
  CONSTRAINT fk_category_layout FOREIGN KEY (layout_id) REFERENCES layouts (id)
);

-- One row of seats: row_label 'A'.., seats numbered 1..=seat_count.
CREATE TABLE layout_rows (
  layout_id BIGINT NOT NULL,
  row_label VARCHAR(3) NOT NULL,
  position INT NOT NULL,
  seat_count INT NOT NULL,
  category_id BIGINT NOT NULL,
  PRIMARY KEY (layout_id, row_label),
  CONSTRAINT fk_row_layout FOREIGN KEY (layout_id) REFERENCES layouts (id),
  CONSTRAINT fk_row_category FOREIGN KEY (category_id) REFERENCES seat_categories (id)
);

CREATE TABLE theaters (
  id BIGINT NOT NULL PRIMARY KEY,
  external_id VARCHAR(64) NOT NULL,
  tid VARCHAR(32) NOT NULL,
  name VARCHAR(255) NOT NULL,
  latitude DOUBLE NOT NULL,
  longitude DOUBLE NOT NULL,
  timezone VARCHAR(64) NOT NULL,
  layout_id BIGINT NOT NULL,
  UNIQUE KEY uq_theater_external (external_id),
  CONSTRAINT fk_theater_layout FOREIGN KEY (layout_id) REFERENCES layouts (id)
);

CREATE TABLE movies (
  id BIGINT NOT NULL PRIMARY KEY,
  external_key VARCHAR(255) NOT NULL,
  title VARCHAR(255) NOT NULL,
  duration_minutes INT NULL,
  poster_url VARCHAR(1024) NULL,
  UNIQUE KEY uq_movie_external (external_key)
);

CREATE TABLE shows (
  id BIGINT NOT NULL PRIMARY KEY,
  theater_id BIGINT NOT NULL,
  movie_id BIGINT NOT NULL,
  layout_id BIGINT NOT NULL,
  local_date DATE NOT NULL,
  starts_at_local DATETIME NOT NULL,
  starts_at_utc DATETIME NOT NULL,
  -- false once the show disappeared from the feed; its bookings are kept.
  in_feed BOOLEAN NOT NULL DEFAULT TRUE,
  UNIQUE KEY uq_show (theater_id, movie_id, starts_at_local),
  KEY ix_show_date (local_date, theater_id),
  KEY ix_show_movie (movie_id, local_date),
  CONSTRAINT fk_show_theater FOREIGN KEY (theater_id) REFERENCES theaters (id),
  CONSTRAINT fk_show_movie FOREIGN KEY (movie_id) REFERENCES movies (id),
  CONSTRAINT fk_show_layout FOREIGN KEY (layout_id) REFERENCES layouts (id)
);

-- A hold: seats kept for one customer until expires_at. seats is 'C7,C8'.
CREATE TABLE holds (
  id VARCHAR(48) NOT NULL PRIMARY KEY,
  show_id BIGINT NOT NULL,
  seats VARCHAR(255) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  -- active | confirmed | expired | released
  state VARCHAR(16) NOT NULL,
  idempotency_key VARCHAR(128) NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_hold_idempotency (show_id, idempotency_key),
  KEY ix_hold_show_state (show_id, state),
  CONSTRAINT fk_hold_show FOREIGN KEY (show_id) REFERENCES shows (id)
);

CREATE TABLE bookings (
  code CHAR(8) NOT NULL PRIMARY KEY,
  show_id BIGINT NOT NULL,
  hold_id VARCHAR(48) NOT NULL,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(254) NOT NULL,
  seats VARCHAR(255) NOT NULL,
  total_cents INT NOT NULL,
  -- confirmed | cancelled
  state VARCHAR(16) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  cancelled_at DATETIME(3) NULL,
  UNIQUE KEY uq_booking_hold (hold_id),
  KEY ix_booking_show (show_id, state),
  CONSTRAINT fk_booking_show FOREIGN KEY (show_id) REFERENCES shows (id)
);

-- Sold seats. The unique key is the last line of defence against a double sale;
-- a cancel deletes the rows so the seats can be sold again.
CREATE TABLE booking_seats (
  show_id BIGINT NOT NULL,
  seat VARCHAR(8) NOT NULL,
  booking_code CHAR(8) NOT NULL,
  PRIMARY KEY (show_id, seat),
  KEY ix_booking_seat_code (booking_code),
  CONSTRAINT fk_seat_booking FOREIGN KEY (booking_code) REFERENCES bookings (code)
);

-- The ordered write log: every write is one entry, committed with its effect.
CREATE TABLE write_log (
  lsn BIGINT NOT NULL PRIMARY KEY,
  epoch BIGINT NOT NULL,
  lamport BIGINT NOT NULL,
  kind VARCHAR(32) NOT NULL,
  payload LONGTEXT NOT NULL,
  created_at DATETIME(3) NOT NULL
);

-- Small durable facts of this node (its election epoch, ...).
CREATE TABLE node_state (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value BIGINT NOT NULL
);
