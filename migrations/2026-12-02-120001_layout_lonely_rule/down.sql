ALTER TABLE layouts DROP COLUMN no_lonely_seats;
