//! What the rest of the node needs to know of the cluster, shared and cheap to read: the
//! protocol's view (role, epoch, master, membership, commit point, storage) as the
//! `ElectionCoordinator` last published it, and where the other nodes are. Written by the
//! coordinator alone; "may this node write?" is the write gate's answer, nowhere else.
use super::config::{ClusterConfig, NodeId, Peer};
use super::core::{Membership, Role, View};
use crate::wal::WriteGate;
use std::sync::{Arc, RwLock};

#[derive(Debug)]
struct Shared {
    view: View,
    peers: Vec<Peer>,
}

/// Where a write goes from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Local,
    Forward(Peer),
    NoMaster,
}

#[derive(Debug)]
pub struct ClusterState {
    pub node_id: NodeId,
    pub config: ClusterConfig,
    pub gate: Arc<WriteGate>,
    shared: RwLock<Shared>,
}

impl ClusterState {
    pub fn new(config: ClusterConfig, epoch: u64, peers: Vec<Peer>) -> Self {
        let view = View {
            role: Role::Follower,
            epoch,
            master: None,
            writable: None,
            commit: 0,
            last: Default::default(),
            membership: Membership::default(),
            storage_ok: true,
        };
        Self { node_id: config.node_id, config, gate: Arc::default(), shared: RwLock::new(Shared { view, peers }) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shared> {
        self.shared.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Shared> {
        self.shared.write().unwrap_or_else(|p| p.into_inner())
    }

    /// True for a node configured without peers.
    pub fn is_single(&self) -> bool {
        matches!(&self.config.peers, super::config::PeerSource::Static(p) if p.is_empty())
    }

    /// Publishes the protocol's view (the coordinator, after every step that changed it).
    pub fn publish(&self, view: View) {
        let master_of = (view.role == Role::Master).then_some(view.epoch);
        self.gate.set(master_of, view.writable);
        self.write().view = view;
    }

    pub fn view(&self) -> View {
        self.read().view.clone()
    }

    pub fn epoch(&self) -> u64 {
        self.read().view.epoch
    }

    /// Master, its epoch begun and committed, and heard by a majority: writes may be taken.
    pub fn writable(&self) -> bool {
        self.gate.writable_epoch().is_some()
    }

    pub fn role(&self) -> Role {
        self.read().view.role
    }

    pub fn master(&self) -> Option<NodeId> {
        self.read().view.master
    }

    pub fn membership(&self) -> Membership {
        self.read().view.membership.clone()
    }

    pub fn storage_ok(&self) -> bool {
        self.read().view.storage_ok
    }

    pub fn peers(&self) -> Vec<Peer> {
        self.read().peers.clone()
    }

    pub fn set_peers(&self, peers: Vec<Peer>) {
        self.write().peers = peers;
    }

    pub fn peer(&self, id: NodeId) -> Option<Peer> {
        self.read().peers.iter().find(|p| p.id == id).cloned()
    }

    pub fn route(&self) -> Route {
        let s = self.read();
        match (s.view.role, s.view.master) {
            (Role::Master, _) if self.gate.writable_epoch().is_some() => Route::Local,
            (Role::Master, _) => Route::NoMaster,
            (_, Some(m)) if m != self.node_id => match s.peers.iter().find(|p| p.id == m) {
                Some(p) => Route::Forward(p.clone()),
                None => Route::NoMaster,
            },
            _ => Route::NoMaster,
        }
    }
}
