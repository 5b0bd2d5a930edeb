//! Booking emails against a real SMTP server (Debian's python3-aiosmtpd, tests/smtp/sink.py)
//! that each test starts on loopback: one confirmation with the e-ticket per booking, one
//! cancellation email, and nothing lost or doubled when the server refuses, hangs, or the
//! master dies between the booking and the sending.
mod common;

use chrono::Duration;
use common::cluster::Cluster;
use common::{spawn_app_with, TestApp};
use marquee::config::Secret;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

const WAIT: StdDuration = StdDuration::from_secs(30);

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The SMTP server of one test: its port and the directory it writes messages to.
struct Sink {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Sink {
    fn new() -> Sink {
        let dir = std::env::temp_dir().join(format!("marquee-mail-{}", marquee::domain::random_token(10)));
        std::fs::create_dir_all(&dir).unwrap();
        Sink { port: free_port(), dir, child: None }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server in `mode` (accept, refuse, hang), replacing the one running.
    fn start(&mut self, mode: &str) {
        self.stop();
        let script = format!("{}/tests/smtp/sink.py", env!("CARGO_MANIFEST_DIR"));
        // Debian's python, where Debian's python3-aiosmtpd is (MAIL_TEST_PYTHON to change).
        let python = std::env::var("MAIL_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let mut child = Command::new(python)
            .args([&script, mode, &self.port.to_string(), self.dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }

    fn attempts(&self) -> usize {
        std::fs::read_to_string(self.dir.join("attempts")).map(|s| s.lines().count()).unwrap_or(0)
    }

    async fn wait_for(&self, what: &str, ok: impl Fn(&Sink) -> bool) {
        let started = Instant::now();
        while !ok(self) {
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}: {:?}", self.messages());
            actix_rt::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn app(sink: &Sink, tweak: impl FnOnce(&mut marquee::config::Settings)) -> TestApp {
    let url = sink.url();
    spawn_app_with(move |s| {
        s.smtp_url = Some(Secret::new(url));
        s.mail_from = "Marquee <tickets@marquee.test>".into();
        s.ticket_key = Some(Secret::new("mail test key"));
        tweak(s);
    })
    .await
}

/// A few of the mailer's passes (it looks every 250 ms): time for a wrong extra email.
async fn a_few_passes() {
    actix_rt::time::sleep(StdDuration::from_millis(1500)).await;
}

#[actix_web::test]
async fn a_booking_gets_one_confirmation_with_its_e_ticket_and_a_cancel_its_own_email() {
    let mut sink = Sink::new();
    sink.start("accept");
    let app = app(&sink, |_| {}).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let code = app.book(show, &["A1", "A2"]).await;

    sink.wait_for("the confirmation", |s| !s.messages().is_empty()).await;
    let m = &sink.messages()[0];
    assert_eq!(m["message_id"], format!("<booking-{code}-confirmed@marquee.invalid>"));
    assert_eq!(m["to"], json!(["ann@example.com"]));
    assert_eq!(m["content_type"], "multipart/alternative");
    let token = marquee::domain::TicketKey::from_secret("mail test key")
        .sign(&marquee::domain::BookingCode::parse(&code).unwrap())
        .to_string();
    for body in [m["text"].as_str().unwrap(), m["html"].as_str().unwrap()] {
        assert!(body.contains("A1, A2") && body.contains(&code) && body.contains(&token), "{body}");
    }
    assert!(m["html"].as_str().unwrap().contains("<svg"), "the QR code");
    let sent = "SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NOT NULL";
    let started = Instant::now();
    while app.count(sent).await < 1 {
        assert!(started.elapsed() < WAIT, "the sending was not recorded");
        actix_rt::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind = 'mail_sent'").await, 1);

    let (status, _) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, 200);
    sink.wait_for("the cancellation", |s| s.messages().len() >= 2).await;
    let c = &sink.messages()[1];
    assert_eq!(c["message_id"], format!("<booking-{code}-cancelled@marquee.invalid>"));
    assert!(c["subject"].as_str().unwrap().starts_with("Cancelled"));
    assert!(!c["text"].as_str().unwrap().contains(&token), "no ticket in a cancellation");
    a_few_passes().await;
    assert_eq!(sink.messages().len(), 2, "each email once");
}

/// A server that refuses, then one that hangs: the booking is confirmed at once all the
/// same, the email is tried again and again, and arrives once the server takes it.
#[actix_web::test]
async fn a_refusing_or_hanging_server_delays_the_email_and_loses_nothing() {
    for mode in ["refuse", "hang"] {
        let mut sink = Sink::new();
        sink.start(mode);
        let app = app(&sink, |s| s.smtp_timeout = StdDuration::from_secs(1)).await;
        let show = app.seed_show(4, 8, Duration::days(1)).await;
        let code = app.book(show, &["B1"]).await;
        sink.wait_for("two tries", |s| s.attempts() >= 2).await;
        assert!(sink.messages().is_empty());
        assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL").await, 1, "{mode}");
        let (status, b) = app.get_json(&format!("/api/bookings/{code}?email=ann@example.com")).await;
        assert_eq!((status.as_u16(), b["state"].as_str()), (200, Some("confirmed")), "{b}");

        sink.start("accept");
        sink.wait_for("the email", |s| !s.messages().is_empty()).await;
        a_few_passes().await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "{mode}: {messages:?}");
        assert_eq!(messages[0]["message_id"], format!("<booking-{code}-confirmed@marquee.invalid>"));
    }
}

/// The master dies after the booking is committed and before its email could be sent (no
/// server yet): the new master sends it, once.
#[actix_web::test]
async fn a_failover_between_booking_and_sending_sends_one_email() {
    let mut sink = Sink::new();
    let url = sink.url();
    let mut env: Vec<(&str, &str)> = marquee::config::LOAD_TEST_LIMITS.to_vec();
    env.extend([("SMTP_URL", url.as_str()), ("SMTP_TIMEOUT_SECONDS", "1")]);
    let mut c = Cluster::start_with_env(3, 4, 8, &env).await;
    let master = c.wait_for_master(StdDuration::from_secs(30)).await.unwrap();
    let outcome = common::cluster::book(&c.client, &c.url(master, ""), c.show, &["C3".to_string()], 1).await;
    let code = match outcome {
        common::cluster::Outcome::Booked(code) => code,
        o => panic!("not booked: {o:?}"),
    };
    c.kill(master);
    let new_master = c.wait_for_master(StdDuration::from_secs(30)).await.expect("a new master");
    assert_ne!(new_master, master);

    sink.start("accept");
    sink.wait_for("the email", |s| !s.messages().is_empty()).await;
    a_few_passes().await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "one email, not two: {messages:?}");
    assert_eq!(messages[0]["message_id"], format!("<booking-{code}-confirmed@marquee.invalid>"));
}
