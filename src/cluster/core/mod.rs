//! The cluster protocol as one deterministic state machine, with no I/O: no actix, no
//! HTTP, no database, no clock reads. A node is driven by [`Node::step`]: timer ticks,
//! received messages and storage reports go in; messages to send, things to persist, the
//! commit point and view changes come out, in the order they must be carried out. The
//! actors (`ElectionCoordinator`, `ReplicationStreamer`) and the simulator
//! ([`sim`]) are its drivers. `docs/protocol.md` states the protocol in full.
//!
//! - `types`: ids, positions, membership, entries, messages, inputs and outputs.
//! - `log`: what the protocol knows of a log (where it ends, the epoch of each entry).
//! - `node`: the rules: bully elections with epochs, pre-claims and votes, the lease,
//!   replication and the commit point, log matching, membership changes.
//! - `sim`: the seeded simulator and its invariants.
pub mod log;
pub mod node;
pub mod sim;
pub mod types;

pub use log::LogIndex;
pub use node::{Node, Role, Timing, View};
pub use types::*;
