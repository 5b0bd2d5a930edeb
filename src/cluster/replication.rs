//! ReplicationStreamer: carries the log between nodes. The protocol (`core`) decides what to
//! send to whom; this actor reads the entries (from memory for what this node appended
//! recently, else from its database), ships them, and tells the `ElectionCoordinator` what
//! the log writer appended as master. It decides nothing.
use super::client::Rpc;
use super::core::{self, Epoch, LogEntry, Lsn, Membership, Message, Position, Time};
use super::messages::ProtocolMessage;
use super::Peer;
use crate::db::Db;
use crate::wal::change::MembershipRecord;
use crate::wal::writer::read_log;
use crate::wal::{Change, LogRecord};
use actix::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

impl LogEntry for LogRecord {
    fn lsn(&self) -> Lsn {
        u64::try_from(self.lsn).unwrap_or(0)
    }

    fn epoch(&self) -> Epoch {
        u64::try_from(self.epoch).unwrap_or(0)
    }

    fn membership(&self) -> Option<Membership> {
        match &self.change {
            Change::Membership(m) => Some(Membership {
                voters: m.voters.iter().copied().collect(),
                learners: m.learners.iter().copied().collect(),
            }),
            _ => None,
        }
    }
}

/// The log's form of a membership.
pub fn membership_change(m: &Membership) -> Change {
    Change::Membership(MembershipRecord {
        voters: m.voters.iter().copied().collect(),
        learners: m.learners.iter().copied().collect(),
    })
}

/// Entries this node's log writer appended as master (for the protocol).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LocalDurable(pub Vec<core::EntryMeta>);

/// Send `to` an Append after `prev` carrying entries `prev.lsn + 1 ..= to_lsn`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ship {
    pub to: Peer,
    pub epoch: Epoch,
    pub prev: Position,
    pub to_lsn: Lsn,
    pub commit: Lsn,
    pub sent_at: Time,
}

/// Forget what memory holds of the log after `after` (the log was cut there).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget {
    pub after: i64,
}

/// Where to report appended entries.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportTo(pub Recipient<LocalDurable>);

pub struct ReplicationStreamer {
    rpc: Rpc,
    db: Db,
    client: Option<awc::Client>,
    /// The newest entries this node appended, one contiguous run of its log.
    recent: VecDeque<LogRecord>,
    report: Option<Recipient<LocalDurable>>,
}

const RECENT: usize = 20_000;

impl ReplicationStreamer {
    pub fn new(rpc: Rpc, db: Db) -> Self {
        Self { rpc, db, client: None, recent: VecDeque::new(), report: None }
    }

    /// Entries `from ..= to` from memory, if it holds all of them.
    fn cached(&self, from: i64, to: i64) -> Option<Vec<LogRecord>> {
        let first = self.recent.front()?.lsn;
        let last = self.recent.back()?.lsn;
        if from < first || to > last || from > to {
            return None;
        }
        Some(self.recent.iter().skip((from - first) as usize).take((to - from + 1) as usize).cloned().collect())
    }
}

impl Actor for ReplicationStreamer {
    type Context = Context<Self>;
}

/// Entries the log writer appended as master.
impl StreamHandler<Vec<LogRecord>> for ReplicationStreamer {
    fn handle(&mut self, records: Vec<LogRecord>, _: &mut Context<Self>) {
        let metas = records.iter().map(core::EntryMeta::of).collect();
        for r in records {
            if self.recent.back().is_some_and(|b| b.lsn + 1 != r.lsn) {
                self.recent.clear();
            }
            self.recent.push_back(r);
        }
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        if let Some(r) = &self.report {
            let _ = r.try_send(LocalDurable(metas)).or_else(|e| match e {
                SendError::Full(m) => {
                    r.do_send(m);
                    Ok(())
                }
                SendError::Closed(_) => Err(()),
            });
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<ReportTo> for ReplicationStreamer {
    type Result = ();
    fn handle(&mut self, msg: ReportTo, _: &mut Context<Self>) {
        self.report = Some(msg.0);
    }
}

impl Handler<Forget> for ReplicationStreamer {
    type Result = ();
    fn handle(&mut self, msg: Forget, _: &mut Context<Self>) {
        self.recent.retain(|r| r.lsn <= msg.after);
    }
}

impl Handler<Ship> for ReplicationStreamer {
    type Result = ();

    fn handle(&mut self, msg: Ship, ctx: &mut Context<Self>) {
        let (from, to) = (msg.prev.lsn as i64 + 1, msg.to_lsn as i64);
        let cached = if from > to { Some(Vec::new()) } else { self.cached(from, to) };
        let db = self.db.clone();
        let rpc = self.rpc.clone();
        let client = self.client.get_or_insert_with(|| Rpc::http_client(Duration::from_secs(10))).clone();
        let work = async move {
            let entries = match cached {
                Some(c) => c,
                None => match db.run(move |c| read_log(c, from - 1, to - from + 1)).await {
                    Ok(e) => e,
                    Err(e) => return log::warn!("replication: cannot read the log: {e}"),
                },
            };
            let message = Message::Append { prev: msg.prev, entries, commit: msg.commit, sent_at: msg.sent_at };
            let env = ProtocolMessage { from: rpc.cluster.node_id, to: msg.to.id, epoch: msg.epoch, message };
            rpc.tell(&client, &msg.to, env).await;
        };
        ctx.spawn(work.into_actor(self));
    }
}
