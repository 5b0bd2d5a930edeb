//! Importing the catalog from the Flixster API (through RapidAPI).
//!
//! - [`feed`]: typed parsing of the API's answers into domain values, and
//!   reading a data set from disk.
//! - [`client`]: the HTTP client that fetches a whole catalog.
//! - [`fixture`]: a local server that speaks the API from a data-set directory.
//!
//! Writing the catalog to the database is not done here: the caller takes the
//! [`CatalogFeed`] and upserts it.

pub mod client;
pub mod feed;
pub mod fixture;

pub use client::{
    FetchError, FetchReport, FlixsterClient, FlixsterConfig, ImportError, Progress, DEFAULT_API_HOST, DEFAULT_BASE_URL,
};
pub use feed::{
    load_dir, parse_theater_detail, parse_theater_list, shift_days, CatalogFeed, FeedError, MovieShowtimes,
    TheaterFeed, TheaterListing,
};
pub use fixture::{
    serve_fixture, start_fixture, today_in_los_angeles, EditError, Fault, FixtureConfig, FixtureHandle, FixtureMovie,
};
