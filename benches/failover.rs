//! Failover time over repeated master kills, on three real nodes on loopback: for each
//! round, SIGKILL the master, then time until a new master is elected and until the first
//! write is acknowledged again; restart the killed node and let it catch up.
//!
//!     cargo bench --bench failover -- [ROUNDS]
//!
//! Needs a MariaDB server (MARQUEE_TEST_DATABASE_URL, default the one scripts/mariadb.sh
//! starts). Prints the figures; asserts nothing about time.
#[path = "../tests/common/mod.rs"]
mod common;

use common::cluster::Cluster;
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    actix_rt::System::new().block_on(async move {
        let mut c = Cluster::start(3, 30, 30).await;
        let client = awc::Client::builder().timeout(Duration::from_secs(3)).finish();
        let mut elected = Vec::new();
        let mut resumed = Vec::new();
        let mut seat = 0usize;
        for round in 1..=rounds {
            let master = c.wait_for_master(Duration::from_secs(30)).await.expect("a master");
            assert!(c.wait_converged(Duration::from_secs(30)).await, "the cluster did not converge");
            let others: Vec<usize> = (0..3).filter(|i| *i != master).collect();
            let killed_at = Instant::now();
            c.kill(master);
            let mut first_write = None;
            let mut new_master = None;
            while killed_at.elapsed() < Duration::from_secs(30) && first_write.is_none() {
                if new_master.is_none() {
                    for &i in &others {
                        if c.status(i).await.is_some_and(|s| s["role"] == "master" && s["writable"] == true) {
                            new_master = Some(killed_at.elapsed());
                        }
                    }
                }
                seat += 1;
                let label = format!("{}{}", marquee::catalog::layout::row_label(seat / 30 % 30), seat % 30 + 1);
                let target = others[seat % 2];
                let res = client
                    .post(c.url(target, &format!("/api/shows/{}/holds", c.show)))
                    .send_json(&serde_json::json!({ "seats": [label] }))
                    .await;
                if res.map(|r| r.status() == 201).unwrap_or(false) {
                    first_write = Some(killed_at.elapsed());
                } else {
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let w = first_write.expect("writes resumed within 30 s");
            let e = new_master.unwrap_or(w);
            println!("round {round}: master node {} killed; new master after {:.2} s, writes again after {:.2} s", c.nodes[master].id, e.as_secs_f64(), w.as_secs_f64());
            elected.push(e);
            resumed.push(w);
            c.spawn(master);
        }
        let stat = |v: &mut Vec<Duration>| {
            v.sort();
            (v[v.len() / 2].as_secs_f64(), v[v.len() - 1].as_secs_f64())
        };
        let (em, ew) = stat(&mut elected);
        let (wm, ww) = stat(&mut resumed);
        println!("failover over {rounds} master kills: new master median {em:.2} s, worst {ew:.2} s; writes acknowledged again median {wm:.2} s, worst {ww:.2} s");
    });
}
