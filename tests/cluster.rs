//! Three real nodes on loopback against one MariaDB (a schema each): replication, failover
//! under load, a paused master, a restarted follower, and a minority that must refuse
//! writes. Every client operation is recorded and the end state is checked against that
//! history: an acknowledged booking that is missing is a lost write, a seat in two
//! bookings is a double sale; both must be zero.
mod common;

use common::browser::Browser;
use common::cluster::{book, Cluster, History, Op, Outcome, ADMIN_PASSWORD};
use rand::seq::SliceRandom;
use rand::Rng;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: usize = 20;
const SEATS: usize = 20;

fn random_seats_in(n: usize, rows: usize, seats: usize) -> Vec<String> {
    let mut rng = rand::thread_rng();
    let mut all: Vec<String> = (0..rows)
        .flat_map(|r| (1..=seats).map(move |s| format!("{}{s}", marquee::catalog::layout::row_label(r))))
        .collect();
    all.shuffle(&mut rng);
    all.truncate(n);
    all
}

/// `clients` clients booking through random nodes among `targets` until `stop`.
fn start_load(
    c: &Cluster,
    targets: Rc<std::cell::RefCell<Vec<usize>>>,
    clients: usize,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    start_load_in(c, targets, clients, history, stop, (ROWS, SEATS))
}

/// As [`start_load`], on a show of `rows` x `seats`.
fn start_load_in(
    c: &Cluster,
    targets: Rc<std::cell::RefCell<Vec<usize>>>,
    clients: usize,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    (rows, per_row): (usize, usize),
) -> Vec<actix_rt::task::JoinHandle<()>> {
    let urls: Vec<String> = (0..c.nodes.len()).map(|i| c.url(i, "")).collect();
    let show = c.show;
    (0..clients)
        .map(|who| {
            let (urls, history, stop, targets) = (urls.clone(), history.clone(), stop.clone(), targets.clone());
            actix_rt::spawn(async move {
                let client = awc::Client::builder().timeout(Duration::from_secs(4)).disable_redirects().finish();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let node = {
                        let t = targets.borrow();
                        t[rand::thread_rng().gen_range(0..t.len())]
                    };
                    let seats = random_seats_in(rand::thread_rng().gen_range(1..=2), rows, per_row);
                    let invoked = Instant::now();
                    let outcome = book(&client, &urls[node], show, &seats, who).await;
                    let unknown = matches!(outcome, Outcome::Unknown(_));
                    history.record(Op { client: who, node, seats, invoked, completed: Instant::now(), outcome });
                    if unknown {
                        actix_rt::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect()
}

async fn stop_load(stop: &AtomicBool, handles: Vec<actix_rt::task::JoinHandle<()>>) {
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = actix_rt::time::timeout(Duration::from_secs(15), h).await;
    }
}

/// Every running node agrees with the history and with the others.
fn assert_consistent(c: &Cluster, history: &History) {
    let running: Vec<usize> = (0..c.nodes.len()).filter(|i| c.is_running(*i)).collect();
    let reference = c.bookings(running[0]);
    for &i in &running {
        let bookings = c.bookings(i);
        let (lost, doubles) = history.check(&bookings);
        assert!(lost.is_empty(), "node {}: acknowledged bookings lost: {lost:?}\n{}", c.nodes[i].id, c.tail_logs());
        assert!(doubles.is_empty(), "node {}: seats sold twice: {doubles:?}", c.nodes[i].id);
        assert_eq!(bookings, reference, "node {} disagrees with node {}", c.nodes[i].id, c.nodes[running[0]].id);
        assert_eq!(
            c.log(i),
            c.log(running[0]),
            "logs differ between node {} and node {}",
            c.nodes[i].id,
            c.nodes[running[0]].id
        );
    }
}

fn summary(history: &History) -> String {
    let ops = history.ops();
    let booked = ops.iter().filter(|o| matches!(o.outcome, Outcome::Booked(_))).count();
    let failed = ops.iter().filter(|o| matches!(o.outcome, Outcome::Failed(_))).count();
    let unknown = ops.iter().filter(|o| matches!(o.outcome, Outcome::Unknown(_))).count();
    format!("{} operations: {booked} acknowledged, {failed} refused, {unknown} unknown", ops.len())
}

#[actix_rt::test]
async fn a_booking_through_a_follower_is_on_every_node() {
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let outcome = book(&client, &c.url(follower, ""), c.show, &["A1".to_string(), "A2".to_string()], 1).await;
    let Outcome::Booked(code) = outcome else {
        panic!("booking through a follower failed: {outcome:?}\n{}", c.tail_logs())
    };
    assert!(c.wait_converged(Duration::from_secs(10)).await);
    for i in 0..3 {
        assert_eq!(c.bookings(i).get(&code), Some(&vec!["A1".to_string(), "A2".to_string()]), "node {}", i + 1);
    }
    // The same entries, with the same LSN and Lamport time, on every node.
    let log = c.log(master);
    assert!(log.iter().any(|e| e.3 == "booking_confirmed"));
    for i in 0..3 {
        assert_eq!(c.log(i), log);
    }
    // Every node serves the seat map it replicated.
    for i in 0..3 {
        let mut res = client.get(c.url(i, &format!("/api/shows/{}/seats", c.show))).send().await.unwrap();
        let map: serde_json::Value = res.json().limit(1 << 20).await.unwrap();
        assert_eq!(map["rows"][0]["seats"][0]["state"], "booked", "node {}", i + 1);
    }
}

/// Holds expire on the master only; a follower that becomes the master expires the holds
/// it learned from the log (its shows load again when it takes writes, and arm their
/// timers).
#[actix_rt::test]
async fn a_new_master_expires_the_holds_it_learned_as_a_follower() {
    // Holds of 3 s.
    let mut c = Cluster::start_with_env(3, ROWS, SEATS, &[("HOLD_MINUTES", "0.05")]).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let seat_a1 = |c: &Cluster, i: usize| {
        let (client, url) = (client.clone(), c.url(i, &format!("/api/shows/{}/seats", c.show)));
        async move {
            let mut res = client.get(url).send().await.ok()?;
            let map: serde_json::Value = res.json().limit(1 << 20).await.ok()?;
            map["rows"][0]["seats"][0]["state"].as_str().map(str::to_string)
        }
    };
    hold_on(&c, &client, master, "A1").await;
    assert!(c.wait_converged(Duration::from_secs(10)).await, "{}", c.tail_logs());
    for i in (0..3).filter(|i| *i != master) {
        assert_eq!(seat_a1(&c, i).await.as_deref(), Some("held"), "node {} learned the hold", c.nodes[i].id);
    }
    c.kill(master);
    let new_master = c.wait_for_master(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("{}", c.tail_logs()));
    assert_ne!(new_master, master);
    let mut tries = 0;
    while seat_a1(&c, new_master).await.as_deref() != Some("free") {
        tries += 1;
        assert!(tries < 150, "the new master never expired the hold\n{}", c.tail_logs());
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = c.log(new_master).iter().any(|e| e.3 == "holds_ended");
    assert!(expired, "the expiry is in the new master's log");
}

/// Node `i`'s Lamport clock, as its `/api/cluster` shows it.
async fn clock_of(c: &Cluster, i: usize) -> i64 {
    c.status(i).await.and_then(|s| s["lamport"].as_i64()).expect("the node's status")
}

async fn hold_on(c: &Cluster, client: &awc::Client, i: usize, seat: &str) {
    let mut res = client
        .post(c.url(i, &format!("/api/shows/{}/holds", c.show)))
        .send_json(&serde_json::json!({ "seats": [seat] }))
        .await
        .unwrap();
    let body: serde_json::Value = res.json().limit(1 << 20).await.unwrap_or_default();
    assert_eq!(res.status().as_u16(), 201, "hold {seat} on node {}: {body}\n{}", c.nodes[i].id, c.tail_logs());
}

#[actix_rt::test]
async fn a_write_through_a_follower_is_logged_after_its_time_there_and_names_it() {
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let (master_id, follower_id) = (c.nodes[master].id as i64, c.nodes[follower].id as i64);
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();

    // Writes made on the master name the master.
    for n in 1..=20 {
        hold_on(&c, &client, master, &format!("C{n}")).await;
    }
    // The follower's clock before the write, and after its answer: the entry falls between,
    // after the write (an event on the follower) and before the follower heard of it.
    let before = clock_of(&c, follower).await;
    hold_on(&c, &client, follower, "B3").await;
    let after = clock_of(&c, follower).await;
    let log = c.log(master);
    let entry = log.last().unwrap().clone();
    assert_eq!(entry.3, "hold_placed");
    assert_eq!(entry.4, follower_id, "the entry names the follower the write came through: {entry:?}");
    assert!(
        before < entry.2 && entry.2 < after,
        "follower at {before}, entry at {}, follower then at {after}",
        entry.2
    );
    let on_master: Vec<_> = log.iter().filter(|e| e.3 == "hold_placed" && e.0 < entry.0).collect();
    assert_eq!(on_master.len(), 20);
    assert!(on_master.iter().all(|e| e.4 == master_id), "{on_master:?}");
    assert!(log.windows(2).all(|w| w[0].2 < w[1].2), "Lamport times rise with the log: {log:?}");
    // Replicas hold the same entries, origins included.
    assert!(c.wait_converged(Duration::from_secs(10)).await, "{}", c.tail_logs());
    for i in 0..3 {
        assert_eq!(c.log(i), log, "node {}", c.nodes[i].id);
    }

    // /api/cluster lists the node's last 20 entries, newest first.
    let status = c.status(follower).await.expect("the follower's status");
    let listed = status["log"].as_array().expect("the last entries of the log").clone();
    assert_eq!(listed.len(), 20, "{status}");
    for (shown, stored) in listed.iter().zip(log.iter().rev()) {
        assert_eq!(shown["lsn"], stored.0, "{shown}");
        assert_eq!(shown["epoch"], stored.1, "{shown}");
        assert_eq!(shown["lamport"], stored.2, "{shown}");
        assert_eq!(shown["kind"], stored.3.as_str(), "{shown}");
        assert_eq!(shown["origin"], stored.4, "{shown}");
        assert!(shown["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{shown}");
    }
    assert_eq!(listed[0]["origin"], follower_id);
}

#[actix_rt::test]
async fn killing_the_master_under_load_loses_no_acknowledged_booking() {
    let mut c = Cluster::start(3, ROWS, SEATS).await;
    let history = Arc::new(History::default());
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Rc::new(std::cell::RefCell::new(vec![0, 1, 2]));
    let load = start_load(&c, targets.clone(), 50, history.clone(), stop.clone());
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let master = c.wait_for_master(Duration::from_secs(10)).await.unwrap();
    targets.borrow_mut().retain(|i| *i != master);
    let killed_at = Instant::now();
    c.kill(master);
    let new_master =
        c.wait_for_master(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("no new master\n{}", c.tail_logs()));
    let elected_in = killed_at.elapsed();
    assert_ne!(new_master, master);
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    stop_load(&stop, load).await;
    let ops = history.ops();
    let first_after = ops
        .iter()
        .filter(|o| o.invoked >= killed_at && matches!(o.outcome, Outcome::Booked(_)))
        .map(|o| o.completed)
        .min();
    let writes_resumed = first_after.map(|t| t - killed_at);
    println!("failover: new master elected after {elected_in:?}; first acknowledged booking after the kill at {writes_resumed:?}; {}", summary(&history));
    assert!(writes_resumed.is_some(), "writes did not resume: {}", summary(&history));
    assert!(
        ops.iter().any(|o| o.completed < killed_at && matches!(o.outcome, Outcome::Booked(_))),
        "no booking before the kill"
    );
    assert!(c.wait_converged(Duration::from_secs(20)).await, "the survivors did not converge\n{}", c.tail_logs());
    assert_consistent(&c, &history);
}

/// The longest stretch between two acknowledged bookings after `from`.
fn longest_quiet(history: &History, from: Instant) -> Duration {
    let mut done: Vec<Instant> = history
        .ops()
        .iter()
        .filter(|o| o.completed >= from && matches!(o.outcome, Outcome::Booked(_)))
        .map(|o| o.completed)
        .collect();
    done.sort();
    std::iter::once(from).chain(done).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// A rolling restart: each node stopped with SIGTERM and started again, under load, the
/// master last. The master hands mastership over before it exits (its log says so, and its
/// successor's epoch is the next one), and nothing acknowledged is lost.
#[actix_rt::test]
async fn a_rolling_restart_under_load_hands_mastership_over_and_loses_nothing() {
    // A big auditorium, so that it does not sell out before the last restart.
    let (rows, per_row) = (60, 50);
    let mut c = Cluster::start(3, rows, per_row).await;
    let history = Arc::new(History::default());
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Rc::new(std::cell::RefCell::new(vec![0, 1, 2]));
    let load = start_load_in(&c, targets.clone(), 8, history.clone(), stop.clone(), (rows, per_row));
    let master = c.wait_for_master(Duration::from_secs(20)).await.expect("a master");
    let order: Vec<usize> = (0..3).filter(|i| *i != master).chain([master]).collect();
    let mut figures = Vec::new();
    for i in order {
        actix_rt::time::sleep(Duration::from_secs(1)).await;
        let epoch = c.status(master).await.and_then(|s| s["epoch"].as_u64());
        targets.borrow_mut().retain(|t| *t != i);
        let stopped_at = Instant::now();
        let took = c.stop(i).await;
        c.spawn(i);
        let m =
            c.wait_for_master(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("no master\n{}", c.tail_logs()));
        // Under load the logs are never equal at one instant: the restarted node has caught
        // up once it holds what the master held when it was back.
        let target = c.status(m).await.and_then(|s| s["last_lsn"].as_i64()).expect("the master's status");
        let until = Instant::now() + Duration::from_secs(30);
        while c.status(i).await.and_then(|s| s["last_lsn"].as_i64()).is_none_or(|l| l < target) {
            assert!(Instant::now() < until, "node {} did not catch up to {target}\n{}", c.nodes[i].id, c.tail_logs());
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        targets.borrow_mut().push(i);
        actix_rt::time::sleep(Duration::from_secs(1)).await;
        let quiet = longest_quiet(&history, stopped_at);
        let unavailable = history
            .ops()
            .iter()
            .filter(|o| o.invoked >= stopped_at && matches!(o.outcome, Outcome::Unknown(_)))
            .count();
        let role = if i == master { "master" } else { "follower" };
        figures.push(format!(
            "{role} node {}: stopped in {took:?}, {unavailable} writes refused as unavailable, longest time without an acknowledged booking {quiet:?}",
            c.nodes[i].id
        ));
        if i == master {
            assert_ne!(m, master, "the stopped master was elected again at once");
            assert!(
                c.log_text(i).contains("hands mastership of epoch"),
                "the master did not hand over\n{}",
                c.tail_logs()
            );
            let now = c.status(m).await.and_then(|s| s["epoch"].as_u64());
            assert_eq!(now, epoch.map(|e| e + 1), "the successor claimed the next epoch");
        }
    }
    stop_load(&stop, load).await;
    println!("rolling restart: {}; {}", figures.join("; "), summary(&history));
    assert!(c.wait_converged(Duration::from_secs(20)).await, "no convergence\n{}", c.tail_logs());
    assert_consistent(&c, &history);
}

#[actix_rt::test]
async fn a_paused_master_steps_down_when_it_wakes_and_nothing_is_lost() {
    let mut c = Cluster::start(3, ROWS, SEATS).await;
    let history = Arc::new(History::default());
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Rc::new(std::cell::RefCell::new(vec![0, 1, 2]));
    let load = start_load(&c, targets.clone(), 30, history.clone(), stop.clone());
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let old = c.wait_for_master(Duration::from_secs(10)).await.unwrap();
    let old_epoch = c.status(old).await.unwrap()["epoch"].as_u64().unwrap();
    c.pause(old);
    let new =
        c.wait_for_master(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("no new master\n{}", c.tail_logs()));
    assert_ne!(new, old);
    // Longer than the failure timeout, then wake it up.
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    c.resume(old);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.status(old).await;
        // It learned the newer epoch (and, being the highest id, may win the next
        // election: a master again, but of a new epoch, after catching up).
        if let Some(s) = &s {
            if s["epoch"].as_u64() > Some(old_epoch)
                && (s["role"] == "follower" || s["master_id"].as_u64() == Some(c.nodes[old].id))
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the old master did not step down: {s:?}\n{}", c.tail_logs());
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    stop_load(&stop, load).await;
    println!("pause: {}", summary(&history));
    assert!(c.wait_for_master(Duration::from_secs(20)).await.is_some());
    assert!(c.wait_converged(Duration::from_secs(30)).await, "the nodes did not converge\n{}", c.tail_logs());
    assert_consistent(&c, &history);
}

#[actix_rt::test]
async fn a_restarted_follower_catches_up() {
    let mut c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    c.kill(follower);
    let history = Arc::new(History::default());
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    for who in 0..20 {
        let seats = vec![format!("{}{}", marquee::catalog::layout::row_label(who / 10), who % 10 + 1)];
        let invoked = Instant::now();
        let outcome = book(&client, &c.url(master, ""), c.show, &seats, who).await;
        assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}");
        history.record(Op { client: who, node: master, seats, invoked, completed: Instant::now(), outcome });
    }
    c.spawn(follower);
    assert!(c.wait_for_master(Duration::from_secs(30)).await.is_some());
    assert!(
        c.wait_converged(Duration::from_secs(30)).await,
        "the restarted follower did not catch up\n{}",
        c.tail_logs()
    );
    assert_consistent(&c, &history);
    let maps: Vec<serde_json::Value> = futures::future::join_all((0..3).map(|i| {
        let client = &client;
        let url = c.url(i, &format!("/api/shows/{}/seats", c.show));
        async move {
            let mut v: serde_json::Value = client.get(url).send().await.unwrap().json().limit(1 << 20).await.unwrap();
            v["version"] = serde_json::Value::Null;
            v
        }
    }))
    .await;
    assert_eq!(maps[0]["rows"], maps[1]["rows"]);
    assert_eq!(maps[0]["rows"], maps[2]["rows"]);
}

#[actix_rt::test]
async fn a_node_left_alone_refuses_writes_and_serves_pages() {
    let mut c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let survivor = (0..3).find(|i| *i != master).unwrap();
    for i in 0..3 {
        if i != survivor {
            c.kill(i);
        }
    }
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    // Within a bounded time the lone node refuses writes with a clear 503 ...
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut res = client
            .post(c.url(survivor, &format!("/api/shows/{}/holds", c.show)))
            .send_json(&serde_json::json!({"seats": ["T20"]}))
            .await
            .unwrap();
        if res.status() == 503 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("master"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the lone node still answers {} to writes", res.status());
        actix_rt::time::sleep(Duration::from_millis(300)).await;
    }
    // ... and keeps serving reads.
    for path in [
        "/".to_string(),
        format!("/shows/{}", c.show),
        format!("/api/shows/{}/seats", c.show),
        "/api/cluster".to_string(),
    ] {
        let res = client.get(c.url(survivor, &path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let status = c.status(survivor).await.unwrap();
    assert_eq!(status["writable"], false);
}

#[actix_rt::test]
async fn a_follower_pushes_seat_changes_it_replicates_to_its_live_pages() {
    use awc::ws::Frame;
    use futures::StreamExt;
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let url = c.url(follower, &format!("/shows/{}/live", c.show)).replacen("http://", "ws://", 1);
    let (_, mut ws) = awc::Client::new().ws(url).connect().await.expect("the socket opens");
    macro_rules! next {
        () => {
            loop {
                match actix_rt::time::timeout(Duration::from_secs(15), ws.next()).await.expect("a frame in time") {
                    Some(Ok(Frame::Text(t))) => break serde_json::from_slice::<serde_json::Value>(&t).unwrap(),
                    Some(Ok(_)) => continue,
                    other => panic!("the socket ended: {other:?}"),
                }
            }
        };
    }
    let snapshot = next!();
    assert_eq!(snapshot["type"], "snapshot");
    // A hold made on the master reaches the page open on the follower.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let res = client
        .post(c.url(master, &format!("/api/shows/{}/holds", c.show)))
        .send_json(&serde_json::json!({"seats": ["B7"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    loop {
        let change = next!();
        if change["type"] == "change"
            && change["seats"].as_array().unwrap().iter().any(|s| s[0] == "B7" && s[1] == "held")
        {
            break;
        }
    }
}

/// POSTs `body` to `/internal/writes` on node `i`, signed as node `from` with `secret`.
async fn post_writes(
    c: &Cluster,
    i: usize,
    from: u64,
    secret: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use marquee::cluster::auth::{nonce, sign, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = c.client.post(c.url(i, "/internal/writes")).insert_header(("Content-Type", "application/json"));
    if let Some(secret) = secret {
        let time = chrono::Utc::now().timestamp();
        let nonce = nonce();
        req = req
            .insert_header((HEADER_NODE, from.to_string()))
            .insert_header((HEADER_TIME, time.to_string()))
            .insert_header((HEADER_NONCE, nonce.clone()))
            .insert_header((HEADER_SIGNATURE, sign(secret, from, time, &nonce, "/internal/writes", &bytes)));
    }
    let mut res = req.send_body(bytes).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().limit(1 << 20).await.unwrap_or(serde_json::Value::Null))
}

#[actix_rt::test]
async fn the_master_checks_every_forwarded_write_and_refuses_outsiders() {
    use common::cluster::SECRET;
    use serde_json::json;
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let from = c.nodes[follower].id;
    // The batch is sent at time 10 of the follower's clock; its writes were made before.
    let envelope =
        |writes: serde_json::Value| json!({"from": from, "epoch": 0, "lamport": 10, "body": {"writes": writes}});
    let made = |lamport: u64, write: serde_json::Value| json!({"origin": from, "lamport": lamport, "write": write});
    let op = |write: serde_json::Value| made(5, write);
    let hold = op(json!({"op": "hold", "show_id": c.show, "seats": ["C1", "C2"], "idempotency_key": null}));
    let log_before = c.log(master).len();

    // Unsigned, or signed with another secret: refused, nothing written.
    let (status, _) = post_writes(&c, master, from, None, &envelope(json!([hold]))).await;
    assert_eq!(status, 401);
    let (status, _) = post_writes(&c, master, from, Some("not-the-cluster-secret"), &envelope(json!([hold]))).await;
    assert_eq!(status, 401);
    // Signed, but not a batch of writes, or too many of them.
    let (status, _) =
        post_writes(&c, master, from, Some(SECRET), &envelope(json!([op(json!({"op": "drop_table", "name": "x"}))])))
            .await;
    assert_eq!(status, 400);
    // A write without the node and time it was made at is not a forwarded write.
    let bare = json!({"op": "hold", "show_id": c.show, "seats": ["C1"], "idempotency_key": null});
    let (status, _) = post_writes(&c, master, from, Some(SECRET), &envelope(json!([bare]))).await;
    assert_eq!(status, 400);
    let too_many: Vec<_> = (0..1025).map(|_| hold.clone()).collect();
    let (status, _) = post_writes(&c, master, from, Some(SECRET), &envelope(json!(too_many))).await;
    assert_eq!(status, 413);
    assert_eq!(c.log(master).len(), log_before, "refused batches write nothing");

    // A batch is parsed write by write: the good one is made, each bad one gets its own refusal.
    let good_seats = json!({"op": "hold", "show_id": c.show, "seats": ["D1"], "idempotency_key": null});
    let writes = json!([
        hold,
        op(json!({"op": "hold", "show_id": c.show, "seats": ["Z99"], "idempotency_key": null})),
        op(json!({"op": "hold", "show_id": c.show, "seats": [], "idempotency_key": null})),
        op(json!({"op": "hold", "show_id": 987654321, "seats": ["A1"], "idempotency_key": null})),
        op(json!({"op": "hold", "show_id": c.show, "seats": ["A1"], "idempotency_key": "\u{1}bad key"})),
        op(json!({"op": "confirm", "hold_id": "not-a-hold", "name": "Ann", "email": "ann@example.com"})),
        op(
            json!({"op": "confirm", "hold_id": format!("{}-aaaaaaaaaaaaaaaaaaaa", c.show), "name": "", "email": "nope"})
        ),
        op(json!({"op": "release", "hold_id": format!("{}-aaaaaaaaaaaaaaaaaaaa", c.show)})),
        op(json!({"op": "cancel", "code": "NOPE", "email": "ann@example.com"})),
        // Good seats, but made on another node than the sender, or not before the batch.
        json!({"origin": from + 10, "lamport": 5, "write": good_seats.clone()}),
        made(10, good_seats.clone()),
        made(0, good_seats),
    ]);
    let n = writes.as_array().unwrap().len();
    let (status, answer) = post_writes(&c, master, from, Some(SECRET), &envelope(writes)).await;
    assert_eq!(status, 200, "{answer}");
    let answers = answer["body"]["answers"].as_array().expect("answers").clone();
    assert_eq!(answers.len(), n, "one answer per write, in order: {answer}");
    assert_eq!(answers[0]["outcome"], "held", "{}", answers[0]);
    assert_eq!(answers[0]["seats"], json!(["C1", "C2"]));
    for a in &answers[1..] {
        assert_eq!(a["outcome"], "refused", "{a}");
        // The refusal travels as its kind, never "failed" (the master's own fault).
        let kind = a["refusal"].as_str().unwrap();
        assert!(
            ["bad_request", "not_found", "unprocessable"].contains(&kind),
            "a bad write is the writer's fault: {a}"
        );
    }
    let log = c.log(master);
    assert_eq!(log.len(), log_before + 1, "only the good write reached the log");
    let entry = log.last().unwrap();
    assert_eq!(entry.3, "hold_placed");
    assert_eq!(entry.4, from as i64, "the entry names the node the write was made on");
    assert!(entry.2 > 5, "the entry is after the write's time on the follower: {entry:?}");
}

#[actix_rt::test]
async fn a_follower_write_cuts_the_log_where_the_protocol_says_and_rebuilds_from_the_rest() {
    use marquee::wal::{Change, LogRecord};

    let (name, db, writer) = common::follower_writer();
    let (catalog, _) = common::show_change(300, 4, 4, chrono::Duration::days(1));
    let entry = |lsn: i64, epoch: i64, change: Change| LogRecord {
        lsn,
        epoch,
        lamport: lsn,
        origin: 2,
        created_at: chrono::Utc::now().naive_utc(),
        change,
    };
    let catalog_at = |lsn: i64, epoch: i64| entry(lsn, epoch, Change::Catalog(Box::new(catalog.clone())));
    // The catalog version (what pages cache by) moves with every catalog entry applied.
    let empty = writer.catalog_version();
    // Entries 1..=4 of epoch 1; entries already stored are skipped when sent again.
    let pos = writer.persist(None, (1..=4).map(|l| catalog_at(l, 1)).collect()).await.unwrap();
    assert_eq!((pos.last_lsn, pos.last_epoch), (4, 1));
    let catalog_v = writer.catalog_version();
    assert_ne!(catalog_v, empty);
    assert_eq!((catalog_v.at.last_lsn, catalog_v.at.last_epoch), (4, 1), "the last catalog entry's position");
    let pos = writer.persist(None, (3..=4).map(|l| catalog_at(l, 1)).collect()).await.unwrap();
    assert_eq!(pos.last_lsn, 4);
    assert_eq!(writer.catalog_version(), catalog_v, "nothing applied, the same catalog");
    // An entry that is not the catalog's leaves the version.
    writer.persist(None, vec![entry(5, 1, Change::EpochStart)]).await.unwrap();
    assert_eq!(writer.catalog_version(), catalog_v);
    // A gap is refused and changes nothing.
    assert!(writer.persist(None, vec![catalog_at(9, 1)]).await.is_err());
    assert_eq!(writer.position().last_lsn, 5);
    // Another master's log wins from entry 3 on: 3 and 4 go, its entry 3 comes.
    let pos = writer.persist(Some(2), vec![entry(3, 2, Change::EpochStart)]).await.unwrap();
    assert_eq!((pos.last_lsn, pos.last_epoch), (3, 2));
    let rebuilt = writer.catalog_version();
    assert_ne!(rebuilt, catalog_v, "a rebuild may change the catalog: another version");
    assert_eq!((rebuilt.at.last_lsn, rebuilt.at.last_epoch), (3, 2));
    let mut conn = db.get().unwrap();
    let rows: Vec<(i64, i64, String)> = {
        use diesel::prelude::*;
        use marquee::db::schema::write_log::dsl as w;
        w::write_log.select((w::lsn, w::epoch, w::kind)).order(w::lsn.asc()).load(&mut conn).unwrap()
    };
    assert_eq!(
        rows,
        vec![(1, 1, "catalog".into()), (2, 1, "catalog".into()), (3, 2, "epoch_start".into())],
        "the log is the winner's, and the state was rebuilt from it"
    );
    let shows: i64 = {
        use diesel::prelude::*;
        marquee::db::schema::shows::table.count().get_result(&mut conn).unwrap()
    };
    assert!(shows > 0, "the catalog of the entries kept is there again");
    drop(conn);
    common::drop_schema(&name);
}

/// The voters node `i` counts.
async fn voters(c: &Cluster, i: usize) -> Vec<u64> {
    let s = c.status(i).await.unwrap_or_default();
    s["voters"].as_array().map(|v| v.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default()
}

#[actix_web::test]
async fn an_operator_removes_a_dead_node_from_the_admin_page() {
    let mut c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let dead = (0..3).find(|i| *i != master).unwrap();
    let via = (0..3).find(|i| *i != master && *i != dead).unwrap();
    let dead_id = dead as u64 + 1;
    c.kill(dead);
    // At a follower's admin page, which passes the removal on to the master.
    let mut op = Browser::logged_in(c.url(via, ""), ADMIN_PASSWORD).await;
    let p = op.get("/admin").await;
    let (status, page) = (p.status, p.body);
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("action=\"/admin/cluster/nodes/{dead_id}/remove\"")),
        "a remove button for node {dead_id}"
    );
    assert!(
        !page.contains(&format!("action=\"/admin/cluster/nodes/{}/remove\"", via + 1)),
        "none for the node serving the page"
    );

    // Bad input changes nothing: not a node id, a node outside the cluster, this node, no token.
    for (path, want) in [
        ("/admin/cluster/nodes/abc/remove".to_string(), 400),
        ("/admin/cluster/nodes/0/remove".to_string(), 400),
        ("/admin/cluster/nodes/99/remove".to_string(), 404),
        (format!("/admin/cluster/nodes/{}/remove", via + 1), 409),
    ] {
        op.get("/admin").await;
        let status = op.post(&path, &[]).await.status;
        assert_eq!(status, want, "{path}");
    }
    op.csrf = "forged-forged-forged-forged-forg".into();
    let status = op.post(&format!("/admin/cluster/nodes/{dead_id}/remove"), &[]).await.status;
    assert_eq!(status, 403, "without its CSRF token");
    assert_eq!(voters(&c, master).await, vec![1, 2, 3], "nothing changed");

    op.get("/admin").await;
    let status = op.post(&format!("/admin/cluster/nodes/{dead_id}/remove"), &[]).await.status;
    assert_eq!(status, 303);
    let want: Vec<u64> = (1..=3).filter(|id| *id != dead_id).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while voters(&c, master).await != want || voters(&c, via).await != want {
        assert!(Instant::now() < deadline, "node {dead_id} is still a voter\n{}", c.tail_logs());
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    let page = op.get(&format!("/admin?removed={dead_id}")).await.body;
    assert!(page.contains(&format!("taking node {dead_id} out of the cluster")));
    // The two left are the whole cluster: a booking needs only them.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let outcome = book(&client, &c.url(via, ""), c.show, &["C1".to_string()], 1).await;
    assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}\n{}", c.tail_logs());
}

/// Sends `bytes` to `path` on node `i` with exactly these signed headers.
async fn send_signed(c: &Cluster, i: usize, path: &str, headers: &[(&str, String)], bytes: &[u8]) -> u16 {
    let mut req = c.client.post(c.url(i, path)).insert_header(("Content-Type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, v.clone()));
    }
    req.send_body(bytes.to_vec()).await.unwrap().status().as_u16()
}

#[actix_rt::test]
async fn a_captured_node_request_cannot_be_replayed() {
    use marquee::cluster::auth::{nonce, sign, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let from = (0..3).find(|i| *i != master).unwrap() as u64 + 1;
    let bytes = serde_json::to_vec(&serde_json::json!({"from": from, "epoch": 0, "lamport": 1, "body": null})).unwrap();
    let time = chrono::Utc::now().timestamp();
    let n = nonce();
    let headers = [
        (HEADER_NODE, from.to_string()),
        (HEADER_TIME, time.to_string()),
        (HEADER_NONCE, n.clone()),
        (HEADER_SIGNATURE, sign(common::cluster::SECRET, from, time, &n, "/internal/status", &bytes)),
    ];
    assert_eq!(send_signed(&c, master, "/internal/status", &headers, &bytes).await, 200, "the request itself");
    assert_eq!(send_signed(&c, master, "/internal/status", &headers, &bytes).await, 401, "the same request again");
    // A fresh nonce under the old signature is a forgery.
    let mut forged = headers.clone();
    forged[2].1 = nonce();
    assert_eq!(
        send_signed(&c, master, "/internal/status", &forged, &bytes).await,
        401,
        "a new nonce, the old signature"
    );
    // The cluster's own traffic still flows: a booking through a follower.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let outcome = book(&client, &c.url(from as usize - 1, ""), c.show, &["D1".to_string()], 1).await;
    assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}\n{}", c.tail_logs());
}

/// The seat-spinning limits as a real site runs them, behind a proxy at 127.0.0.1.
const REAL_LIMITS: [(&str, &str); 4] = [
    ("MAX_HELD_SEATS", "10"),
    ("MAX_HOLDS_PER_MINUTE", "6"),
    ("HOLD_COOLOFF_SECONDS", "120"),
    ("TRUSTED_PROXIES", "127.0.0.1"),
];

async fn hold_as(c: &Cluster, i: usize, who: &str, seats: &[&str]) -> (u16, serde_json::Value) {
    let mut b = Browser::new(c.url(i, "")).via_proxy_for(who);
    let p = b.post_json(&format!("/api/shows/{}/holds", c.show), &serde_json::json!({ "seats": seats })).await;
    (p.status, p.json())
}

#[actix_web::test]
async fn seat_spinning_limits_hold_across_nodes_and_survive_a_failover() {
    let mut c = Cluster::start_with_env(3, ROWS, SEATS, &REAL_LIMITS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|i| *i != master).collect();
    // A script holds through both followers: the master counts it as one client.
    let mut placed = 0;
    for (n, row) in ["A", "B", "C", "D", "E"].iter().enumerate() {
        let via = followers[n % 2];
        let (status, body) = hold_as(&c, via, "203.0.113.66", &[&format!("{row}1"), &format!("{row}2")]).await;
        assert_eq!(status, 201, "{body}\n{}", c.tail_logs());
        placed += 1;
    }
    assert_eq!(placed, 5);
    let (status, body) = hold_as(&c, followers[0], "203.0.113.66", &["F1"]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 10"), "{body}");
    assert!(body["retry_after"].as_u64().is_some(), "{body}");
    // The master dies; the next one rebuilds the limits from the log.
    c.wait_converged(Duration::from_secs(10)).await;
    c.kill(master);
    let next = c.wait_for_master(Duration::from_secs(20)).await.expect("a new master");
    let other = followers.iter().copied().find(|i| *i != next).unwrap();
    for via in [next, other] {
        let (status, body) = hold_as(&c, via, "203.0.113.66", &["F1"]).await;
        assert_eq!(status, 429, "after the failover, through node {}: {body}\n{}", via + 1, c.tail_logs());
    }
    // Another client is served at once.
    let (status, body) = hold_as(&c, other, "198.51.100.7", &["F1", "F2"]).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_web::test]
async fn an_admin_cookie_copied_before_logout_is_refused_on_every_node() {
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let a = (0..3).find(|i| *i != master).unwrap();
    let b = (0..3).find(|i| *i != master && *i != a).unwrap();
    // Logged in at a follower; the session is good on every node.
    let mut op = Browser::logged_in(c.url(a, ""), ADMIN_PASSWORD).await;
    let copied = op.cookies.clone();
    let on = |i: usize| {
        let mut thief = Browser::new(c.url(i, ""));
        thief.cookies = copied.clone();
        thief
    };
    for i in 0..3 {
        assert_eq!(on(i).get("/admin/shows").await.status, 200, "node {}", i + 1);
    }
    op.get("/admin").await;
    assert_eq!(op.post("/admin/logout", &[]).await.status, 303);
    // Once each node has the log's end, the copied cookie is refused there.
    assert!(c.wait_converged(Duration::from_secs(10)).await);
    for i in [b, master, a] {
        let p = on(i).get("/admin/shows").await;
        assert_eq!(p.status, 401, "node {}: {}", i + 1, p.body);
    }
    assert_eq!(on(b).get("/admin/api/imports").await.status, 401);
}

/// "Find me N seats" through a follower: the master's show actor decides, and its refusals
/// come back to the customer as they would from the master.
#[actix_web::test]
async fn best_available_through_a_follower() {
    let c = Cluster::start(3, ROWS, SEATS).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let mut b = Browser::new(c.url(follower, ""));
    let holds = format!("/api/shows/{}/holds", c.show);

    let p = b.post_json(&holds, &serde_json::json!({ "best": 4 })).await;
    assert_eq!(p.status, 201, "{}\n{}", p.body, c.tail_logs());
    let seats: Vec<String> = serde_json::from_value(p.json()["seats"].clone()).unwrap();
    assert_eq!(seats.len(), 4, "{}", p.body);
    // One row, side by side.
    let row = |s: &String| s.trim_end_matches(|ch: char| ch.is_ascii_digit()).to_string();
    let num = |s: &String| s[row(s).len()..].parse::<u32>().unwrap();
    assert!(seats.iter().all(|s| row(s) == row(&seats[0])), "{seats:?}");
    let mut nums: Vec<u32> = seats.iter().map(num).collect();
    nums.sort_unstable();
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{seats:?}");
    // The seats are held on the master's map, and the follower sees them after replication.
    assert!(c.wait_converged(Duration::from_secs(10)).await);
    let map = awc::Client::default()
        .get(c.url(follower, &format!("/api/shows/{}/seats", c.show)))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .limit(1 << 20)
        .await
        .unwrap();
    let held: Vec<String> = map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap().iter())
        .filter(|s| s["state"] != "free")
        .map(|s| s["seat"].as_str().unwrap().to_string())
        .collect();
    let mut expected = seats.clone();
    expected.sort();
    let mut held_sorted = held.clone();
    held_sorted.sort();
    assert_eq!(held_sorted, expected, "the follower's map");

    // Bad "best" requests are refused through the follower as on the master: 422, nothing held.
    for best in [0, 11] {
        let p = b.post_json(&holds, &serde_json::json!({ "best": best })).await;
        assert_eq!(p.status, 422, "best {best}: {}", p.body);
        assert!(p.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", p.body);
    }
    // Nothing else was held by the refusals.
    assert!(c.wait_converged(Duration::from_secs(10)).await);
    let bookings_and_holds: i64 = {
        use diesel::prelude::*;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(*) AS n FROM holds WHERE state = 'active'")
            .get_result::<N>(&mut c.conn(master))
            .unwrap()
            .n
    };
    assert_eq!(bookings_and_holds, 1, "only the best-available hold is active");
}

/// Seat A1's state on a show page (its `title` ends with it).
fn seat_a1(page: &str) -> &str {
    let at = page.find("title=\"A1 · ").expect("seat A1 on the page");
    let title = &page[at + 7..];
    title[..title.find('"').unwrap()].rsplit(" · ").next().unwrap()
}

/// A follower's pages follow the entries it applies: its listing, cached before, shows an
/// import made on the master on its first request once the entry is there, and its show
/// page shows a booking made through another node.
#[actix_web::test]
async fn a_followers_pages_show_an_import_and_a_booking_once_the_entries_reach_it() {
    let api = common::FixtureApi::start();
    let mut env: Vec<(&str, &str)> = marquee::config::LOAD_TEST_LIMITS.to_vec();
    env.extend([("FLIXSTER_BASE_URL", api.base_url.as_str()), ("FLIXSTER_API_KEY", common::API_KEY)]);
    let c = Cluster::start_with_env(3, 4, 4, &env).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|i| *i != master).collect();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let get = |i: usize, path: String| {
        let (client, url) = (client.clone(), c.url(i, &path));
        async move {
            let mut res = client.get(url).send().await.expect("request");
            assert_eq!(res.status(), 200);
            String::from_utf8(res.body().limit(4 << 20).await.unwrap().to_vec()).unwrap()
        }
    };
    let listing = format!("/?date={}", common::fixture_day());
    let show = format!("/shows/{}", c.show);
    assert!(c.wait_converged(Duration::from_secs(20)).await, "{}", c.tail_logs());
    for &i in &followers {
        for _ in 0..2 {
            assert!(get(i, listing.clone()).await.contains("No movies found."), "node {}", i + 1);
            assert_eq!(seat_a1(&get(i, show.clone()).await), "free", "node {}", i + 1);
        }
    }

    let outcome = book(&client, &c.url(followers[0], ""), c.show, &["A1".to_string()], 1).await;
    assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}\n{}", c.tail_logs());
    let mut op = Browser::logged_in(c.url(master, ""), ADMIN_PASSWORD).await;
    op.get("/admin").await;
    assert_eq!(op.post("/admin/imports", &[]).await.status, 303);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(master, listing.clone()).await.contains("No movies found.") {
        assert!(Instant::now() < deadline, "the import did not reach the master's listing\n{}", c.tail_logs());
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.wait_converged(Duration::from_secs(30)).await, "{}", c.tail_logs());
    for &i in &followers {
        let page = get(i, listing.clone()).await;
        assert!(page.contains("class=\"movie-card\""), "node {}: the import on the first request", i + 1);
        let page = get(i, show.clone()).await;
        assert_eq!(seat_a1(&page), "booked", "node {}: the booking", i + 1);
    }
    api.stop().await;
}

/// Compacted logs (LOG_RETAIN_ENTRIES=20): a voter that was down while the others went on
/// comes back to a new master that no longer holds the entries it needs, installs that
/// master's snapshot, and catches up; every acknowledged booking is on every node, once.
#[actix_rt::test]
async fn a_voter_behind_a_compacted_log_installs_the_masters_snapshot() {
    let mut env = marquee::config::LOAD_TEST_LIMITS.to_vec();
    env.push(("LOG_RETAIN_ENTRIES", "20"));
    let mut c = Cluster::start_with_env(3, ROWS, SEATS, &env).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.expect("a master");
    let lagging = (0..3).find(|i| *i != master).unwrap();
    let other = (0..3).find(|i| *i != master && *i != lagging).unwrap();
    c.kill(lagging);
    let history = Arc::new(History::default());
    let stop = Arc::new(AtomicBool::new(false));
    let targets = Rc::new(std::cell::RefCell::new(vec![master, other]));
    let load = start_load(&c, targets, 8, history.clone(), stop.clone());
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until
        && history.ops().iter().filter(|o| matches!(o.outcome, Outcome::Booked(_))).count() < 120
    {
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    stop_load(&stop, load).await;
    assert!(c.wait_converged(Duration::from_secs(20)).await, "no convergence\n{}", c.tail_logs());
    // The follower compacted what it committed; the master could not (a voter is behind).
    let first = |i: usize| c.log(i).first().map(|e| e.0).unwrap_or(0);
    assert!(first(other) > 50, "node {} did not compact its log: it starts at {}", c.nodes[other].id, first(other));
    c.kill(master);
    c.spawn(lagging);
    let m = c.wait_for_master(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("no master\n{}", c.tail_logs()));
    assert_eq!(m, other, "the node with the longer log is master");
    assert!(c.wait_converged(Duration::from_secs(30)).await, "the lagging node did not catch up\n{}", c.tail_logs());
    assert!(
        c.log_text(lagging).contains("installed node"),
        "the lagging node caught up without a snapshot\n{}",
        c.tail_logs()
    );
    c.spawn(master);
    assert!(c.wait_for_master(Duration::from_secs(30)).await.is_some(), "no master\n{}", c.tail_logs());
    assert!(c.wait_converged(Duration::from_secs(30)).await, "no convergence\n{}", c.tail_logs());
    let reference = c.bookings(other);
    for i in 0..3 {
        let bookings = c.bookings(i);
        let (lost, doubles) = history.check(&bookings);
        assert!(lost.is_empty(), "node {}: acknowledged bookings lost: {lost:?}", c.nodes[i].id);
        assert!(doubles.is_empty(), "node {}: seats sold twice: {doubles:?}", c.nodes[i].id);
        assert_eq!(bookings, reference, "node {} disagrees", c.nodes[i].id);
    }
    println!("snapshot install: {}", summary(&history));
}
