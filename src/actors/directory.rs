//! Finds (or starts) the actor of a show. Show actors are spread over a few arbiters
//! (threads) by show id, and started on first use.
use super::show::{ShowActor, ShowDeps};
use crate::domain::ShowId;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct ShowDirectory {
    arbiters: Vec<ArbiterHandle>,
    actors: Mutex<HashMap<ShowId, Addr<ShowActor>>>,
    deps: ShowDeps,
}

impl ShowDirectory {
    pub fn new(arbiters: Vec<ArbiterHandle>, deps: ShowDeps) -> Self {
        assert!(!arbiters.is_empty(), "show actors need at least one arbiter");
        Self { arbiters, actors: Mutex::new(HashMap::new()), deps }
    }

    /// The live actor of `show`, started if needed (it loads its state before its first
    /// message and stops itself if the show does not exist).
    pub fn get(&self, show: ShowId) -> Addr<ShowActor> {
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addr) = actors.get(&show).filter(|a| a.connected()) {
            return addr.clone();
        }
        let arbiter = &self.arbiters[show.0.unsigned_abs() as usize % self.arbiters.len()];
        let deps = self.deps.clone();
        let addr = ShowActor::start_in_arbiter(arbiter, move |_| ShowActor::new(show, deps));
        if actors.len() > 100_000 {
            actors.retain(|_, a| a.connected());
        }
        actors.insert(show, addr.clone());
        addr
    }

    /// Every loaded show reloads from the database (this node's state was rebuilt from
    /// another node's log, or it takes writes again), each in its own actor, in place: a
    /// second actor beside one that still has writes in flight would load without them.
    pub fn reset(&self) {
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        actors.retain(|_, a| a.connected());
        for addr in actors.values() {
            addr.do_send(super::show::Reload);
        }
    }

    /// The actor of `show` if it is loaded.
    pub fn loaded_one(&self, show: ShowId) -> Option<Addr<ShowActor>> {
        self.actors.lock().unwrap_or_else(|p| p.into_inner()).get(&show).filter(|a| a.connected()).cloned()
    }

    /// Every started actor, for broadcasting replicated changes.
    pub fn loaded(&self) -> Vec<(ShowId, Addr<ShowActor>)> {
        let actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        actors.iter().filter(|(_, a)| a.connected()).map(|(k, a)| (*k, a.clone())).collect()
    }
}
