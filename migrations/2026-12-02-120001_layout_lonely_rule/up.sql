-- The no-lonely-seat rule, per auditorium (a theater has one): on unless turned off.
ALTER TABLE layouts ADD COLUMN no_lonely_seats BOOLEAN NOT NULL DEFAULT TRUE;
