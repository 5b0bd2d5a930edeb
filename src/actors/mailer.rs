//! **Mailer**: sends the outbox's booking emails over SMTP, on the master only.
//!
//! The outbox is rows that `wal::apply` writes from `BookingConfirmed` and
//! `BookingCancelled`, so an email is owed exactly when its booking (or cancel) is in the
//! log, on every node. The master sends what is owed, one message at a time, and records
//! each one sent with a `MailSent` entry; a new master sends only what no entry marks. A
//! failed try is tried again later ([`Retries`]), so a refusing or hanging server delays
//! mail and loses none. Every message keeps its Message-ID across tries and masters.
use crate::cluster::ClusterState;
use crate::db::catalog;
use crate::db::orders::find_booking;
use crate::db::outbox::{self, OutboxRow};
use crate::db::Db;
use crate::domain::{BookingCode, TicketKey};
use crate::mail::{self, mail_kind, ShowFacts};
use crate::wal::change::{Change, MailSent};
use crate::wal::LogWriter;
use actix::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the master looks at the outbox.
const TICK: Duration = Duration::from_millis(250);
/// Messages looked at per pass.
const BATCH: i64 = 20;

/// When each message that failed may be tried again. Plain data: the actor asks it.
#[derive(Debug, Default)]
pub struct Retries {
    failed: HashMap<String, (u32, Instant)>,
}

impl Retries {
    /// Whether `id` may be tried at `now`.
    pub fn due(&self, id: &str, now: Instant) -> bool {
        self.failed.get(id).is_none_or(|(_, next)| *next <= now)
    }

    /// A try of `id` failed at `now`: its count and when it is next due.
    pub fn failed(&mut self, id: &str, now: Instant) -> (u32, Duration) {
        let entry = self.failed.entry(id.to_string()).or_insert((0, now));
        entry.0 += 1;
        let wait = mail::backoff(entry.0);
        entry.1 = now + wait;
        (entry.0, wait)
    }

    pub fn sent(&mut self, id: &str) {
        self.failed.remove(id);
    }
}

pub struct Mailer {
    db: Db,
    writer: LogWriter,
    cluster: Arc<ClusterState>,
    tickets: Arc<TicketKey>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The longest one message may take, all exchanges included.
    limit: Duration,
    retries: Retries,
    busy: bool,
}

/// SMTP_URL, MAIL_FROM, SMTP_TIMEOUT_SECONDS as the mailer takes them.
#[derive(Debug, thiserror::Error)]
pub enum MailerConfigError {
    #[error("SMTP_URL is not valid: {0}")]
    Url(String),
    #[error("MAIL_FROM is not an address: {0}")]
    From(String),
}

/// Where SMTP_URL points: `smtp://[user:password@]host[:port]` (port 25 by default). Plain
/// SMTP only: this build has no TLS for mail.
#[derive(Debug, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl SmtpTarget {
    /// The error never repeats the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.trim().strip_prefix("smtp://").ok_or("expected smtp://[user:password@]host[:port]")?;
        let rest = rest.trim_end_matches('/');
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((auth, hp)) => {
                let (user, password) = auth.split_once(':').ok_or("credentials must be user:password")?;
                (Some((user.to_string(), password.to_string())), hp)
            }
            None => (None, rest),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| "the port is not a number")?),
            None => (host_port, 25),
        };
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err("expected smtp://[user:password@]host[:port]".into());
        }
        Ok(Self { host: host.to_string(), port, credentials })
    }
}

impl Mailer {
    pub fn new(
        db: Db,
        writer: LogWriter,
        cluster: Arc<ClusterState>,
        tickets: Arc<TicketKey>,
        smtp_url: &str,
        from: &str,
        timeout: Duration,
    ) -> Result<Self, MailerConfigError> {
        let target = SmtpTarget::parse(smtp_url).map_err(MailerConfigError::Url)?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host)
            .port(target.port)
            .timeout(Some(timeout));
        if let Some((user, password)) = target.credentials {
            builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(user, password));
        }
        let smtp = builder.build();
        let from = from.parse().map_err(|e: lettre::address::AddressError| MailerConfigError::From(e.to_string()))?;
        Ok(Self {
            db,
            writer,
            cluster,
            tickets,
            smtp,
            from,
            limit: 2 * timeout,
            retries: Retries::default(),
            busy: false,
        })
    }

    fn pass(&mut self, ctx: &mut Context<Self>) {
        if self.busy || !self.cluster.writable() {
            return;
        }
        self.busy = true;
        let now = Instant::now();
        let (db, writer, tickets, smtp, from, limit) = (
            self.db.clone(),
            self.writer.clone(),
            self.tickets.clone(),
            self.smtp.clone(),
            self.from.clone(),
            self.limit,
        );
        let retries = &self.retries;
        let skip: Vec<String> = retries.failed.keys().filter(|id| !retries.due(id, now)).cloned().collect();
        let work = async move {
            let rows = db.run(move |c| outbox::unsent(c, BATCH)).await.map_err(|e| e.to_string())?;
            let mut results = Vec::new();
            for row in rows.into_iter().filter(|r| !skip.contains(&r.message_id)) {
                // A server that stops answering mid-message must not hold up the rest.
                let result = match actix_rt::time::timeout(limit, send(&db, &tickets, &smtp, &from, &row)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer from the SMTP server within {} s", limit.as_secs())),
                };
                if result.is_ok() {
                    let change = Change::MailSent(MailSent { message_id: row.message_id.clone() });
                    if let Err(e) = writer.append(change).await {
                        // Sent but not recorded: a later master may send it again, with
                        // the same Message-ID.
                        log::warn!("mail {} sent but not recorded: {e}", row.message_id);
                    }
                }
                results.push((row, result));
            }
            Ok::<_, String>(results)
        };
        ctx.spawn(work.into_actor(self).map(|outcome, act, _| {
            act.busy = false;
            let now = Instant::now();
            match outcome {
                Ok(results) => {
                    for (row, result) in results {
                        match result {
                            Ok(()) => {
                                act.retries.sent(&row.message_id);
                                log::info!("mail {} for booking {} sent", row.kind, row.booking_code);
                            }
                            Err(e) => {
                                let (n, wait) = act.retries.failed(&row.message_id, now);
                                log::warn!(
                                    "mail {} for booking {} failed (try {n}, next in {} s): {e}",
                                    row.kind,
                                    row.booking_code,
                                    wait.as_secs()
                                );
                            }
                        }
                    }
                }
                Err(e) => log::warn!("the outbox could not be read: {e}"),
            }
        }));
    }
}

/// Composes and sends one outbox message.
async fn send(
    db: &Db,
    tickets: &TicketKey,
    smtp: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    row: &OutboxRow,
) -> Result<(), String> {
    let code = row.booking_code.clone();
    let found = db
        .run(move |c| {
            let Some(b) = find_booking(c, &code)? else { return Ok(None) };
            let details = catalog::show_details(c, b.show_id)?;
            Ok(Some((b, details)))
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some((b, details)) = found else { return Err("its booking is not here".into()) };
    let show = match details {
        Some((s, m, t)) => ShowFacts {
            movie: m.title,
            theater: t.name,
            when: s.starts_at_local.format("%a %-d %b %Y %H:%M").to_string(),
        },
        None => ShowFacts { movie: "your show".into(), theater: String::new(), when: String::new() },
    };
    let ticket = match (row.kind.as_str(), BookingCode::parse(&b.code)) {
        (mail_kind::CONFIRMED, Ok(code)) => Some(tickets.sign(&code)),
        _ => None,
    };
    let letter = mail::compose(&row.kind, &b, &show, ticket.as_ref());
    let to: Mailbox = b.email.parse().map_err(|e| format!("the booking's address: {e}"))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(letter.subject)
        .message_id(Some(row.message_id.clone()))
        .multipart(MultiPart::alternative_plain_html(letter.text, letter.html))
        .map_err(|e| e.to_string())?;
    smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string())
}

impl Actor for Mailer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |act, ctx| act.pass(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_a_host_a_port_and_maybe_credentials() {
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.credentials), ("127.0.0.1", 2525, None));
        assert_eq!(SmtpTarget::parse("smtp://mail.example.com").unwrap().port, 25);
        let t = SmtpTarget::parse("smtp://bob:s3:cr@t@mail:587/").unwrap();
        assert_eq!(t.credentials, Some(("bob".to_string(), "s3:cr@t".to_string())));
        assert_eq!((t.host.as_str(), t.port), ("mail", 587));
        for bad in ["http://x", "smtp://", "smtp://host:port", "smtp://user@host", "smtp://a b:25"] {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad}");
        }
        let e = SmtpTarget::parse("smtps://bob:hunter2@host").unwrap_err();
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn a_failed_message_waits_longer_each_time_and_a_sent_one_is_forgotten() {
        let mut r = Retries::default();
        let t0 = Instant::now();
        assert!(r.due("m", t0));
        assert_eq!(r.failed("m", t0), (1, Duration::from_secs(1)));
        assert!(!r.due("m", t0) && r.due("m", t0 + Duration::from_secs(1)));
        assert_eq!(r.failed("m", t0), (2, Duration::from_secs(2)));
        assert!(!r.due("m", t0 + Duration::from_secs(1)));
        assert!(r.due("other", t0), "each message on its own");
        r.sent("m");
        assert!(r.due("m", t0));
    }
}
