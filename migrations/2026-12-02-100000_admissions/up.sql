-- Who came in: one row per booking admitted at the door, written by the log's `admission`
-- entries on every node. The first admission of a booking is the one kept.
CREATE TABLE admissions (
    booking_code CHAR(8) NOT NULL PRIMARY KEY,
    show_id BIGINT NOT NULL,
    admitted_at DATETIME NOT NULL,
    node BIGINT NOT NULL,
    KEY admissions_show (show_id)
);
