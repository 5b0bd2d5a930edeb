//! Marquee: a movie-ticket booking site whose shows are actors.
pub mod actors;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod importer;
pub mod mail;
pub mod metrics;
pub mod startup;
#[cfg(test)]
mod testing;
pub mod wal;
pub mod web;
