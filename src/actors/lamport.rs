//! The node's Lamport clock: every local event ticks it, every message from another node
//! merges into it (max + 1). The rules are plain methods, the actor only serializes them.
use actix::prelude::*;

/// The clock's rules, without an actor.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lamport {
    time: u64,
}

impl Lamport {
    pub fn starting_at(time: u64) -> Self {
        Self { time }
    }

    pub fn now(&self) -> u64 {
        self.time
    }

    /// Ticks once per event; returns the time of the first of `events` new events.
    pub fn tick(&mut self, events: u64) -> u64 {
        let first = self.time + 1;
        self.time += events.max(1);
        first
    }

    /// Merges a time heard from another node: after it, this clock is past both.
    pub fn merge(&mut self, remote: u64) -> u64 {
        self.time = self.time.max(remote) + 1;
        self.time
    }
}

pub struct LamportClock {
    clock: Lamport,
}

impl LamportClock {
    pub fn new(start: u64) -> Self {
        Self { clock: Lamport::starting_at(start) }
    }
}

impl Actor for LamportClock {
    type Context = Context<Self>;
}

/// Local events: returns the timestamp of the first one.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Tick {
    pub events: u64,
}

impl Handler<Tick> for LamportClock {
    type Result = u64;
    fn handle(&mut self, msg: Tick, _: &mut Context<Self>) -> u64 {
        self.clock.tick(msg.events)
    }
}

/// A message from another node carried this time.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Merge {
    pub remote: u64,
}

impl Handler<Merge> for LamportClock {
    type Result = u64;
    fn handle(&mut self, msg: Merge, _: &mut Context<Self>) -> u64 {
        self.clock.merge(msg.remote)
    }
}

/// The current time, without ticking.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Now;

impl Handler<Now> for LamportClock {
    type Result = u64;
    fn handle(&mut self, _: Now, _: &mut Context<Self>) -> u64 {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_increasing() {
        let mut c = Lamport::default();
        assert_eq!(c.tick(1), 1);
        assert_eq!(c.tick(3), 2);
        assert_eq!(c.now(), 4);
        assert_eq!(c.tick(1), 5);
    }

    #[test]
    fn merge_takes_max_plus_one() {
        let mut c = Lamport::starting_at(5);
        assert_eq!(c.merge(10), 11);
        assert_eq!(c.merge(3), 12);
        assert_eq!(c.tick(1), 13);
    }
}
