//! The internal edge: node-to-node endpoints on a listener of their own (INTERNAL_BIND),
//! which the public listener does not serve, and answers that are signed so that a node
//! cannot be fed a forged one.
mod common;

use actix::Actor;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::cluster::{book, Cluster, Outcome};
use common::spawn_app_with;
use marquee::actors::lamport::LamportClock;
use marquee::cluster::auth::{
    nonce, sign, sign_answer, verify_answer, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME,
};
use marquee::cluster::client::{Rpc, RpcError};
use marquee::cluster::messages::{Envelope, NodeStatus};
use marquee::cluster::{ClusterConfig, ClusterState, Peer};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "internal-edge-secret-0123456789";

/// A node-to-node request to `base` + `path`, signed as node 2 would sign it. Returns the
/// status, the answer's signature header and its body, and the request's nonce.
async fn signed_post(base: &str, path: &str) -> (u16, Option<String>, Vec<u8>, String) {
    let bytes = serde_json::to_vec(&serde_json::json!({"from": 2, "epoch": 0, "lamport": 1, "body": null})).unwrap();
    let time = chrono::Utc::now().timestamp();
    let n = nonce();
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).disable_redirects().finish();
    let mut res = client
        .post(format!("{base}{path}"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header((HEADER_NODE, "2"))
        .insert_header((HEADER_TIME, time.to_string()))
        .insert_header((HEADER_NONCE, n.clone()))
        .insert_header((HEADER_SIGNATURE, sign(SECRET, 2, time, &n, path, &bytes)))
        .send_body(bytes)
        .await
        .expect("request");
    let sig = res.headers().get(HEADER_SIGNATURE).map(|v| v.to_str().unwrap().to_string());
    let body = res.body().limit(1 << 20).await.unwrap().to_vec();
    (res.status().as_u16(), sig, body, n)
}

async fn get_status(url: &str) -> u16 {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).disable_redirects().finish();
    client.get(url).send().await.expect("request").status().as_u16()
}

#[actix_rt::test]
async fn with_an_internal_listener_the_public_one_does_not_serve_node_endpoints() {
    let app = spawn_app_with(|s| {
        s.cluster.secret = SECRET.into();
        s.internal_bind = Some("127.0.0.1:0".into());
    })
    .await;
    assert_ne!(app.internal_address, app.address, "a listener of its own");

    // A correctly signed request to the public port: the ordinary not-found page.
    for path in ["/internal/status", "/internal/message", "/internal/writes", "/internal/backup"] {
        let (status, sig, body, _) = signed_post(&app.address, path).await;
        assert_eq!(status, 404, "{path} on the public port");
        assert!(sig.is_none(), "no signed answer from the public port");
        let page = String::from_utf8_lossy(&body);
        assert!(page.contains("There is nothing at this address."), "{path}: the not-found page: {page}");
    }
    for path in ["/internal", "/internal/", "/internal/status", "/%69nternal/status", "//internal/status"] {
        assert_eq!(get_status(&app.url(path)).await, 404, "GET {path} on the public port");
    }

    // The same request on the internal port is answered, signed for it.
    let (status, sig, body, n) = signed_post(&app.internal_address, "/internal/status").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(verify_answer(SECRET, &n, 200, &body, &sig.expect("a signed answer")), Ok(()));
    let answer: Envelope<NodeStatus> = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer.body.node_id, app.state.cluster.node_id);

    // Health on both; the site only on the public one.
    assert_eq!(get_status(&app.url("/healthz")).await, 200);
    assert_eq!(get_status(&format!("{}/healthz", app.internal_address)).await, 200);
    assert_eq!(get_status(&app.url("/")).await, 200);
    assert_eq!(get_status(&format!("{}/", app.internal_address)).await, 404);
    assert_eq!(get_status(&format!("{}/api/cluster", app.internal_address)).await, 404);
}

#[actix_rt::test]
async fn without_an_internal_listener_the_one_listener_serves_node_endpoints() {
    let app = spawn_app_with(|s| {
        s.cluster.secret = SECRET.into();
        s.internal_bind = None;
    })
    .await;
    assert_eq!(app.internal_address, app.address);
    let (status, sig, body, n) = signed_post(&app.address, "/internal/status").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(verify_answer(SECRET, &n, 200, &body, &sig.expect("a signed answer")), Ok(()));
}

#[actix_rt::test]
async fn a_cluster_whose_nodes_talk_on_internal_listeners_elects_and_replicates() {
    let c = Cluster::start_with(3, 10, 10, true).await;
    let master = c.wait_for_master(Duration::from_secs(20)).await.expect("a master");
    let follower = (0..3).find(|i| *i != master).unwrap();
    // Every node sees the other two (asked over the internal listeners).
    for i in 0..3 {
        let s = c.status(i).await.expect("a cluster view");
        let reachable = s["nodes"].as_array().unwrap().iter().filter(|n| n["reachable"] == true).count();
        assert_eq!(reachable, 3, "node {}: {s}\n{}", i + 1, c.tail_logs());
    }
    // A booking through a follower is forwarded to the master and replicated to every node.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let outcome = book(&client, &c.url(follower, ""), c.show, &["B2".to_string()], 1).await;
    let Outcome::Booked(code) = outcome else { panic!("{outcome:?}\n{}", c.tail_logs()) };
    assert!(c.wait_converged(Duration::from_secs(20)).await, "{}", c.tail_logs());
    for i in 0..3 {
        assert_eq!(c.bookings(i).get(&code), Some(&vec!["B2".to_string()]), "node {}", i + 1);
    }
    // The public ports do not take node-to-node requests.
    let (status, _, _, _) = signed_post(&c.url(master, ""), "/internal/status").await;
    assert_eq!(status, 404);
}

/// How the fake peer answers: each path a different forgery, and one honest answer.
async fn fake_peer(req: HttpRequest) -> HttpResponse {
    let asked = req.headers().get(HEADER_NONCE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let status = NodeStatus {
        node_id: 9,
        role: "master".into(),
        epoch: 99,
        master_id: Some(9),
        lamport: 5,
        last_lsn: 1,
        last_epoch: 99,
        commit_lsn: 1,
        writable: true,
        last_heartbeat_ms: None,
        voters: vec![9],
        learners: vec![],
        storage_ok: true,
    };
    let answer = serde_json::to_vec(&Envelope { from: 9, epoch: 99, lamport: 5, body: status }).unwrap();
    let signed = |sig: String, body: Vec<u8>| {
        HttpResponse::Ok().content_type("application/json").insert_header((HEADER_SIGNATURE, sig)).body(body)
    };
    match req.path() {
        "/internal/honest" => signed(sign_answer(SECRET, &asked, 200, &answer), answer),
        "/internal/unsigned" => HttpResponse::Ok().content_type("application/json").body(answer),
        "/internal/other-secret" => signed(sign_answer("someone-else-secret-0123", &asked, 200, &answer), answer),
        // An answer recorded from another request, replayed.
        "/internal/other-nonce" => signed(sign_answer(SECRET, &nonce(), 200, &answer), answer),
        "/internal/tampered" => {
            let sig = sign_answer(SECRET, &asked, 200, &answer);
            let forged = String::from_utf8(answer).unwrap().replace("\"epoch\":99", "\"epoch\":100");
            signed(sig, forged.into_bytes())
        }
        "/internal/stale-unsigned" => HttpResponse::Conflict()
            .content_type("application/json")
            .body(r#"{"stale":true,"epoch":1000,"master_id":9}"#),
        _ => HttpResponse::Unauthorized().json(serde_json::json!({"error": "node authentication failed"})),
    }
}

#[actix_rt::test]
async fn an_answer_without_a_valid_signature_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = HttpServer::new(|| App::new().default_service(web::to(fake_peer)))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let mut config = ClusterConfig::single(1);
    config.secret = SECRET.into();
    let rpc = Rpc { cluster: Arc::new(ClusterState::new(config, 0, Vec::new())), clock: LamportClock::new(0).start() };
    let peer = Peer { id: 9, address };
    let client = Rpc::http_client(Duration::from_secs(5));
    let call = |path: &'static str| {
        let (rpc, client, peer) = (rpc.clone(), client.clone(), peer.clone());
        async move { rpc.call::<_, NodeStatus>(&client, &peer, path, serde_json::json!({})).await }
    };

    // The honest answer is taken (so the refusals below are about the signatures).
    let honest = call("/internal/honest").await.expect("a signed answer is taken");
    assert_eq!((honest.from, honest.epoch, honest.body.node_id), (9, 99, 9));
    for path in ["/internal/unsigned", "/internal/other-secret", "/internal/other-nonce", "/internal/tampered"] {
        let err = call(path).await.expect_err(path);
        assert!(matches!(err, RpcError::Unsigned(..)), "{path}: {err}");
    }
    // An unsigned "your epoch is stale" must not make a node believe a newer epoch exists.
    let err = call("/internal/stale-unsigned").await.expect_err("stale");
    assert!(matches!(err, RpcError::Unsigned(..)), "{err}");
    // A refusal (unsigned, as before verification) is an error too.
    let err = call("/internal/nowhere").await.expect_err("refused");
    assert!(matches!(err, RpcError::Status(_, 401)), "{err}");
    handle.stop(false).await;
}
