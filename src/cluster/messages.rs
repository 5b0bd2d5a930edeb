//! What nodes say to each other under `/internal/`. Every request and every answer carries
//! the sender's id, epoch and Lamport time.
use super::NodeId;
use crate::wal::LogRecord;
use serde::{Deserialize, Serialize};

/// The envelope of every node-to-node message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub from: NodeId,
    pub epoch: u64,
    pub lamport: u64,
    pub body: T,
}

pub use crate::wal::LogPosition;

/// A message of the protocol (`/internal/message`): one way, its answer (if any) another
/// message the other way.
pub type ProtocolMessage = super::core::Envelope<LogRecord>;

/// A node's view of itself, for the cluster page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub role: String,
    pub epoch: u64,
    pub master_id: Option<NodeId>,
    pub lamport: u64,
    pub last_lsn: i64,
    pub last_epoch: i64,
    pub commit_lsn: i64,
    pub writable: bool,
    /// Milliseconds since this node last heard its master (followers).
    pub last_heartbeat_ms: Option<u64>,
    #[serde(default)]
    pub voters: Vec<NodeId>,
    #[serde(default)]
    pub learners: Vec<NodeId>,
    /// Its storage works (else it takes no part until it does).
    #[serde(default = "yes")]
    pub storage_ok: bool,
}

fn yes() -> bool {
    true
}

/// The answer when the sender's epoch is older than ours: it must catch up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaleEpoch {
    pub stale: bool,
    pub epoch: u64,
    pub master_id: Option<NodeId>,
}

/// Writes a follower passes on to the master, as many as were waiting (`/internal/writes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBatch {
    pub writes: Vec<ForwardedWrite>,
}

/// One write a visitor made on a follower, as the follower read it (the master parses it
/// again: a batch is input like any other), with where and when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedWrite {
    /// The node the visitor made it on: the follower that sends the batch.
    pub origin: NodeId,
    /// That node's Lamport time of the write (a local event there, so before the time of
    /// the message that carries it). The master's entry for it comes after.
    pub lamport: u64,
    pub write: WriteOp,
}

/// "Find me N seats" as a forwarded hold carries it (parsed again on the master).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestWire {
    pub count: i64,
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteOp {
    Hold {
        show_id: i64,
        seats: Vec<String>,
        idempotency_key: Option<String>,
        /// The visitor, for the seat-spinning limits the master applies.
        #[serde(default)]
        client: crate::domain::Client,
        /// "Find me N seats" instead of `seats` (which is then empty).
        #[serde(default)]
        best: Option<BestWire>,
        /// The visitor needs a wheelchair space.
        #[serde(default)]
        wheelchair: bool,
    },
    Confirm {
        hold_id: String,
        name: String,
        email: String,
    },
    Release {
        hold_id: String,
    },
    Cancel {
        code: String,
        email: String,
    },
}

/// The master's answers to a [`WriteBatch`], one per write, in the same order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteAnswers {
    pub answers: Vec<WriteAnswer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteAnswer {
    Held(crate::actors::show::HoldReceipt),
    Booked(crate::actors::show::BookingReceipt),
    Released,
    /// The write was refused, or failed.
    Refused(Refusal),
}

/// Why a node refused a write or an admin action that another node passed on to it. It
/// travels as this type (not a status and a string) and becomes the web layer's error again
/// on the node that passed it on, with the same status, message and details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict { message: String, taken: Vec<String> },
    #[error("{message}")]
    Gone { message: String },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{message}")]
    Unprocessable { message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("{message}")]
    Unavailable { message: String },
    /// Something broke on the node that refused (its cause is logged there).
    #[error("something went wrong on the master")]
    Failed,
}

/// The result of an admin action another node ran for this one.
pub type Relayed<T> = Result<T, Refusal>;

/// What a node reads back from a peer (`cluster::client`): any bytes or JSON, or a real
/// answer changed anywhere, is the answer or a serde error (`RpcError::BadAnswer`),
/// never a panic. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::actors::show::BookingReceipt;
    use crate::testing::{bytes, json_with_keys, mutations_of};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    pub const CASES: u32 = 300;

    const KEYS: &[&str] = &[
        "from", "epoch", "lamport", "body", "answers", "outcome", "refusal", "message", "taken", "stale", "Ok", "Err",
    ];

    fn read_all(body: &[u8]) {
        let _ = serde_json::from_slice::<Envelope<WriteAnswers>>(body);
        let _ = serde_json::from_slice::<Envelope<NodeStatus>>(body);
        let _ = serde_json::from_slice::<Envelope<Relayed<()>>>(body);
        let _ = serde_json::from_slice::<StaleEpoch>(body);
    }

    /// A real answer to `/internal/writes`: a booking and a refusal.
    fn answers() -> Value {
        let booked = WriteAnswer::Booked(BookingReceipt {
            code: "ABCDEFGH".into(),
            show_id: 4,
            hold_id: "4-ABCDEFGHJKMNPQRSTWXY".into(),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            seats: vec!["C7".into()],
            total_cents: 1250,
            state: "confirmed".into(),
        });
        let refused = WriteAnswer::Refused(Refusal::Conflict { message: "taken".into(), taken: vec!["C8".into()] });
        json!(Envelope { from: 3, epoch: 2, lamport: 77, body: WriteAnswers { answers: vec![booked, refused] } })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_answer_is_read_or_a_serde_error(
            body in prop_oneof![
                bytes(),
                json_with_keys(KEYS).prop_map(|v| v.to_string().into_bytes()),
                mutations_of(answers()).prop_map(|v| v.to_string().into_bytes()),
            ]
        ) {
            read_all(&body);
        }
    }

    #[test]
    fn the_unchanged_answer_is_read() {
        let env: Envelope<WriteAnswers> = serde_json::from_value(answers()).unwrap();
        assert_eq!(env.body.answers.len(), 2);
    }

    #[test]
    fn a_hold_forwarded_before_best_existed_is_still_read_and_best_travels() {
        let old: WriteOp = serde_json::from_value(
            serde_json::json!({"op": "hold", "show_id": 4, "seats": ["C7"], "idempotency_key": null}),
        )
        .unwrap();
        assert!(matches!(old, WriteOp::Hold { best: None, wheelchair: false, .. }));
        let new = WriteOp::Hold {
            show_id: 4,
            seats: vec![],
            idempotency_key: None,
            client: crate::domain::Client::default(),
            best: Some(BestWire { count: 3, category: Some("premium".into()) }),
            wheelchair: true,
        };
        let back: WriteOp = serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        assert_eq!(back, new);
        let bad = serde_json::json!({"op": "hold", "show_id": 4, "seats": [], "idempotency_key": null, "best": {"count": 2, "seats": 1}});
        assert!(serde_json::from_value::<WriteOp>(bad).is_err(), "unknown fields in best are refused");
    }
}

/// A node's refusal to serve a backup (`/internal/backup`), signed like every answer: a
/// follower names its master, whom the client then asks (status 421); with no master now,
/// none (503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRefused {
    pub error: String,
    pub master: Option<super::Peer>,
}
