//! The cluster: identical nodes, one master. The master alone writes; a write is
//! acknowledged once a majority holds it. Bully elections with epochs pick the master.
//!
//! - `config`: NODE_ID, PEERS, CLUSTER_SECRET, timeouts.
//! - `discovery`: where the peers are (a fixed list, or a DNS name under compose).
//! - `auth`: node-to-node requests are signed with the shared secret.
//! - `messages`, `client`: the RPC over HTTP under `/internal/`.
//! - `core`: the protocol as one pure state machine, and its simulator.
//! - `election`: the ElectionCoordinator, the actor that drives the core on a node.
//! - `replication`: the ReplicationStreamer, shipping the log's entries between nodes.
//! - `lag`: when the master appended its entries, for the followers' lag in seconds.
pub mod auth;
pub mod client;
pub mod config;
pub mod core;
pub mod discovery;
pub mod election;
pub mod lag;
pub mod messages;
pub mod replication;
pub mod state;

pub use config::{ClusterConfig, NodeId, Peer};
pub use core::Role;
pub use state::ClusterState;
