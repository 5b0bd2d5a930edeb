// The tables of migrations/, in diesel's `table!` form (what `diesel print-schema` writes).

diesel::table! {
    layouts (id) {
        id -> BigInt,
        name -> Varchar,
        no_lonely_seats -> Bool,
    }
}

diesel::table! {
    seat_categories (id) {
        id -> BigInt,
        layout_id -> BigInt,
        code -> Varchar,
        name -> Varchar,
        price_cents -> Integer,
        letter -> Nullable<Char>,
    }
}

diesel::table! {
    layout_rows (layout_id, row_label) {
        layout_id -> BigInt,
        row_label -> Varchar,
        position -> Integer,
        seat_count -> Integer,
        category_id -> BigInt,
        seats -> Nullable<Varchar>,
    }
}

diesel::table! {
    theaters (id) {
        id -> BigInt,
        external_id -> Varchar,
        tid -> Varchar,
        name -> Varchar,
        latitude -> Double,
        longitude -> Double,
        timezone -> Varchar,
        layout_id -> BigInt,
    }
}

diesel::table! {
    movies (id) {
        id -> BigInt,
        external_key -> Varchar,
        title -> Varchar,
        duration_minutes -> Nullable<Integer>,
        poster_url -> Nullable<Varchar>,
    }
}

diesel::table! {
    shows (id) {
        id -> BigInt,
        theater_id -> BigInt,
        movie_id -> BigInt,
        layout_id -> BigInt,
        local_date -> Date,
        starts_at_local -> Datetime,
        starts_at_utc -> Datetime,
        in_feed -> Bool,
    }
}

diesel::table! {
    holds (id) {
        id -> Varchar,
        show_id -> BigInt,
        seats -> Varchar,
        expires_at -> Datetime,
        state -> Varchar,
        idempotency_key -> Nullable<Varchar>,
        created_at -> Datetime,
        client_addr -> Nullable<Varchar>,
        client_session -> Nullable<Char>,
    }
}

diesel::table! {
    bookings (code) {
        code -> Char,
        show_id -> BigInt,
        hold_id -> Varchar,
        name -> Varchar,
        email -> Varchar,
        seats -> Varchar,
        total_cents -> Integer,
        state -> Varchar,
        created_at -> Datetime,
        cancelled_at -> Nullable<Datetime>,
    }
}

diesel::table! {
    booking_seats (show_id, seat) {
        show_id -> BigInt,
        seat -> Varchar,
        booking_code -> Char,
    }
}

diesel::table! {
    write_log (lsn) {
        lsn -> BigInt,
        epoch -> BigInt,
        lamport -> BigInt,
        origin -> BigInt,
        kind -> Varchar,
        payload -> Longtext,
        created_at -> Datetime,
    }
}

diesel::table! {
    node_state (name) {
        name -> Varchar,
        value -> BigInt,
    }
}

diesel::table! {
    import_jobs (id) {
        id -> BigInt,
        state -> Varchar,
        requested_by -> Varchar,
        queued_at -> Datetime,
        started_at -> Nullable<Datetime>,
        finished_at -> Nullable<Datetime>,
        theaters_done -> Integer,
        theaters_total -> Nullable<Integer>,
        counts -> Nullable<Text>,
        requests -> Integer,
        retries -> Integer,
        lsn -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    admin_sessions (id) {
        id -> Char,
        created_at -> Datetime,
        expires_at -> Datetime,
        ended_at -> Nullable<Datetime>,
        client_addr -> Nullable<Varchar>,
    }
}

diesel::table! {
    admissions (booking_code) {
        booking_code -> Char,
        show_id -> Bigint,
        admitted_at -> Datetime,
        node -> Bigint,
    }
}

diesel::table! {
    outbox (message_id) {
        message_id -> Varchar,
        booking_code -> Char,
        kind -> Varchar,
        created_at -> Datetime,
        sent_at -> Nullable<Datetime>,
    }
}

diesel::table! {
    admin_credentials (id) {
        id -> Tinyint,
        password_hash -> Varchar,
        changed_at -> Datetime,
    }
}

diesel::joinable!(seat_categories -> layouts (layout_id));
diesel::joinable!(theaters -> layouts (layout_id));
diesel::joinable!(shows -> theaters (theater_id));
diesel::joinable!(shows -> movies (movie_id));
diesel::joinable!(holds -> shows (show_id));
diesel::joinable!(bookings -> shows (show_id));

diesel::allow_tables_to_appear_in_same_query!(
    layouts,
    seat_categories,
    layout_rows,
    theaters,
    movies,
    shows,
    holds,
    bookings,
    booking_seats,
    write_log,
    node_state,
    import_jobs,
    admin_sessions,
    admin_credentials,
    admissions,
    outbox,
);
