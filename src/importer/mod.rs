//! Importing the catalog from the Flixster API (through RapidAPI).
//!
//! - [`feed`]: typed parsing of the API's answers into domain values.
pub mod feed;
