//! The ordered write log. Every write of the system (holds, bookings, cancels, catalog
//! changes) is one [`Change`]; the master numbers it (LSN), stamps it (epoch, Lamport time)
//! and commits it together with its effect ([`apply`]); followers apply the same records.
pub mod apply;
pub mod change;
pub mod commit;
pub mod sql_text;
pub mod undo;
pub mod writer;

pub use change::{Change, LogRecord, Origin};
pub use commit::{CommitTracker, Decision, WriteGate};
pub use writer::{monotonic_ms, CatalogVersion, LogPosition, LogWriter, Outcome, WalError, WriterStats};
