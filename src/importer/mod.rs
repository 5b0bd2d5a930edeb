//! The external catalog API (Flixster's format): typed parsing of its answers.
pub mod feed;
