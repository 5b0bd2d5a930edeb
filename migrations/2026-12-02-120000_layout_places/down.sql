ALTER TABLE layout_rows DROP COLUMN seats;
ALTER TABLE seat_categories DROP COLUMN letter;
