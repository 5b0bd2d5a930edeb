//! On a follower, the writes its visitors make go to the master in batches. The
//! WriteForwarder queues them; one signed `/internal/writes` request carries every write
//! waiting at that moment, at most [`IN_FLIGHT`] such requests are under way at once, and
//! each answer goes back to its caller. Alone, a write leaves at once; under load, hundreds
//! of writes share a few round trips instead of one HTTP request each.
use super::error::WebError;
use crate::cluster::client::{Rpc, RpcError};
use crate::cluster::messages::{ForwardedWrite, WriteAnswer, WriteAnswers, WriteBatch};
use crate::cluster::state::Route;
use actix::prelude::*;
use futures::channel::oneshot;
use std::collections::VecDeque;
use std::time::Duration;

/// Batches under way to the master at once.
pub const IN_FLIGHT: usize = 2;
/// The most writes in one batch (the master refuses more than `internal::MAX_FORWARDED`).
pub const MAX_BATCH: usize = 256;
/// How long a batch may take: the master answers once every write in it is settled.
const TIMEOUT: Duration = Duration::from_secs(15);

type Reply = oneshot::Sender<Result<WriteAnswer, WebError>>;

pub struct WriteForwarder {
    rpc: Rpc,
    client: Option<awc::Client>,
    waiting: VecDeque<(ForwardedWrite, Reply)>,
    in_flight: usize,
}

impl WriteForwarder {
    pub fn new(rpc: Rpc) -> Self {
        Self { rpc, client: None, waiting: VecDeque::new(), in_flight: 0 }
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < IN_FLIGHT && !self.waiting.is_empty() {
            let n = self.waiting.len().min(MAX_BATCH);
            let (writes, replies): (Vec<ForwardedWrite>, Vec<Reply>) = self.waiting.drain(..n).unzip();
            let peer = match self.rpc.cluster.route() {
                Route::Forward(peer) => peer,
                // Nothing was sent, so the writes did not happen: the caller may simply retry.
                Route::Local => {
                    refuse_all(replies, "this node has just become the master; try again");
                    continue;
                }
                Route::NoMaster => {
                    refuse_all(
                        replies,
                        "no master is available right now (an election may be under way); try again in a few seconds",
                    );
                    continue;
                }
            };
            self.in_flight += 1;
            let rpc = self.rpc.clone();
            let client = self.client.get_or_insert_with(|| Rpc::http_client(TIMEOUT)).clone();
            let call = async move {
                rpc.call::<_, WriteAnswers>(&client, &peer, "/internal/writes", WriteBatch { writes }).await
            };
            ctx.spawn(call.into_actor(self).map(move |res, act, ctx| {
                act.in_flight -= 1;
                deliver(res, replies);
                act.pump(ctx);
            }));
        }
    }
}

/// Hands each caller its answer; if the master's answer is missing or unreadable, the
/// outcome of every write in the batch is unknown.
fn deliver(res: Result<crate::cluster::messages::Envelope<WriteAnswers>, RpcError>, replies: Vec<Reply>) {
    let unknown = |why: String| {
        WebError::Unavailable(format!(
            "the master did not answer ({why}); the outcome is unknown, retry with the same Idempotency-Key"
        ))
    };
    match res {
        Ok(env) if env.body.answers.len() == replies.len() => {
            for (reply, answer) in replies.into_iter().zip(env.body.answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(env) => {
            let why = format!("{} answers to {} writes", env.body.answers.len(), replies.len());
            for reply in replies {
                let _ = reply.send(Err(unknown(why.clone())));
            }
        }
        Err(e) => {
            log::warn!("forwarding {} writes to the master failed: {e}", replies.len());
            for reply in replies {
                let _ = reply.send(Err(unknown(e.to_string())));
            }
        }
    }
}

fn refuse_all(replies: Vec<Reply>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(WebError::Unavailable(why.to_string())));
    }
}

impl Actor for WriteForwarder {
    type Context = Context<Self>;
}

/// Pass `write` on to the master; the answer comes back on `reply`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forward {
    pub write: ForwardedWrite,
    pub reply: Reply,
}

impl Handler<Forward> for WriteForwarder {
    type Result = ();

    fn handle(&mut self, msg: Forward, ctx: &mut Context<Self>) {
        self.waiting.push_back((msg.write, msg.reply));
        self.pump(ctx);
    }
}
