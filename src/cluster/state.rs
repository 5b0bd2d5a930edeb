//! What the web layer and the log writer need to know of the cluster, shared and cheap to
//! read: this node's role, the epoch, the master, whether writes may be taken now.
use super::config::{ClusterConfig, NodeId, Peer};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Candidate,
    Master,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Master => "master",
        }
    }
}

#[derive(Debug)]
struct Shared {
    role: Role,
    master: Option<NodeId>,
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
    epoch: AtomicU64,
    /// The epoch in which this node may take writes (master with a majority), or -1.
    writable_in: AtomicI64,
    shared: RwLock<Shared>,
}

impl ClusterState {
    pub fn new(config: ClusterConfig, epoch: u64, peers: Vec<Peer>) -> Self {
        let node_id = config.node_id;
        let single = peers.is_empty() && matches!(config.peers, super::config::PeerSource::Static(_));
        Self {
            node_id,
            config,
            epoch: AtomicU64::new(epoch),
            // A cluster of one is its own master from the start.
            writable_in: AtomicI64::new(if single { epoch as i64 } else { -1 }),
            shared: RwLock::new(Shared {
                role: if single { Role::Master } else { Role::Follower },
                master: single.then_some(node_id),
                peers,
            }),
        }
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

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn set_epoch(&self, e: u64) {
        self.epoch.store(e, Ordering::SeqCst);
    }

    /// Master, synced, and heard by a majority: writes may be taken.
    pub fn writable(&self) -> bool {
        self.writable_epoch().is_some()
    }

    /// The epoch this node writes in, while it may take writes. Entries are stamped with
    /// it, never with an epoch this node learned of later (it is no master of that one).
    pub fn writable_epoch(&self) -> Option<u64> {
        let w = self.writable_in.load(Ordering::SeqCst);
        (w >= 0 && w as u64 == self.epoch()).then_some(w as u64)
    }

    pub fn set_writable(&self, w: bool) {
        self.writable_in.store(if w { self.epoch() as i64 } else { -1 }, Ordering::SeqCst);
    }

    pub fn role(&self) -> Role {
        self.read().role
    }

    pub fn master(&self) -> Option<NodeId> {
        self.read().master
    }

    pub fn set_role(&self, role: Role, master: Option<NodeId>) {
        let mut s = self.write();
        s.role = role;
        s.master = master;
        if role != Role::Master {
            self.writable_in.store(-1, Ordering::SeqCst);
        }
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

    /// Nodes in the cluster, this one included.
    pub fn size(&self) -> usize {
        self.read().peers.len() + 1
    }

    pub fn majority(&self) -> usize {
        self.size() / 2 + 1
    }

    pub fn route(&self) -> Route {
        let s = self.read();
        match (s.role, s.master) {
            (Role::Master, _) => Route::Local,
            (_, Some(m)) if m != self.node_id => match s.peers.iter().find(|p| p.id == m) {
                Some(p) => Route::Forward(p.clone()),
                None => Route::NoMaster,
            },
            _ => Route::NoMaster,
        }
    }
}
