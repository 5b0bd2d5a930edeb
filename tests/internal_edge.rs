//! The internal edge: answers to node-to-node requests are signed, so that a node cannot
//! be fed a forged one.
mod common;

use actix::Actor;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use marquee::actors::lamport::LamportClock;
use marquee::cluster::auth::{nonce, sign_answer, HEADER_NONCE, HEADER_SIGNATURE};
use marquee::cluster::client::{Rpc, RpcError};
use marquee::cluster::messages::{Envelope, NodeStatus};
use marquee::cluster::{ClusterConfig, ClusterState, Peer};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "internal-edge-secret-0123456789";

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
