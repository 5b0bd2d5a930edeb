-- Auditorium layouts with aisles, gaps and seat kinds (issue 13). A row's `seats` holds its
-- places as written in the layout text (category letters, W, C, _ and .); NULL for rows
-- stored before: `seat_count` standard seats of `category_id`. A category's `letter` is the
-- one rows name it by; NULL: the first letter of its code, upper case.
ALTER TABLE seat_categories ADD COLUMN letter CHAR(1) NULL;
ALTER TABLE layout_rows ADD COLUMN seats VARCHAR(64) NULL;
