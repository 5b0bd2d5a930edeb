//! The actors inside one node. Their decisions live in plain structs beside them
//! (`seat_map`, `lamport::Lamport`), unit-tested without an actix System.
pub mod directory;
pub mod error;
pub mod importer;
pub mod lamport;
pub mod layout_switch;
pub mod mailer;
pub mod seat_map;
pub mod seating;
pub mod show;

pub use directory::ShowDirectory;
pub use error::BookingError;
pub use importer::ApiImporter;
