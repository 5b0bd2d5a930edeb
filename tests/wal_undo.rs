//! A follower's log cut where another master's log wins: the entries taken out are undone
//! one by one (not rebuilt from the whole log), and the tables end exactly as if the node
//! had only ever applied the winner's log. And a batch that fails half-way stores nothing.
//! Real MariaDB schemas, the real log writer.
mod common;

use chrono::NaiveDateTime;
use marquee::db::snapshot::{read_chunk, ChunkCursor, TABLES};
use marquee::db::Db;
use marquee::wal::change::{
    AdminChange, BookingCancelled, BookingConfirmed, CatalogChange, HoldPlaced, HoldsEnded, MailSent,
};
use marquee::wal::{Change, LogRecord, LogWriter, WalError};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

struct Node {
    name: String,
    db: Db,
    writer: LogWriter,
}

impl Node {
    fn start() -> Node {
        let (name, db, writer) = common::follower_writer();
        Node { name, db, writer }
    }

    /// Every replicated table, each row as JSON, in key order.
    fn tables(&self) -> BTreeMap<&'static str, Vec<String>> {
        let mut conn = self.db.get().unwrap();
        TABLES
            .iter()
            .map(|t| {
                let mut cursor = ChunkCursor::new(5000);
                let mut rows = Vec::new();
                while !cursor.done {
                    let chunk = read_chunk(&mut conn, t, &cursor).unwrap();
                    let last = chunk.last().map(|(k, _)| k.clone());
                    cursor.advance(chunk.len(), last);
                    rows.extend(chunk.into_iter().map(|(_, json)| json));
                }
                (*t, rows)
            })
            .collect()
    }

    /// Asserts that every table holds exactly the rows of a node that only ever applied
    /// `kept` then `won`; that node's schema is dropped again.
    async fn assert_tables_as_if_only(&self, kept: &[LogRecord], won: &[LogRecord]) {
        let straight = Node::start();
        straight.writer.persist(None, kept.iter().chain(won).cloned().collect()).await.unwrap();
        let expected = straight.tables();
        straight.drop_schema();
        for (table, rows) in self.tables() {
            assert_eq!(rows, expected[table], "{table} differs from the winner's");
        }
    }

    fn drop_schema(self) {
        drop(self.writer);
        drop(self.db);
        common::drop_schema(&self.name);
    }
}

/// Builds log records; every time is one fixed instant, so both nodes store the same rows.
struct Log {
    show: i64,
    at: NaiveDateTime,
}

impl Log {
    fn rec(&self, lsn: i64, epoch: i64, change: Change) -> LogRecord {
        LogRecord { lsn, epoch, lamport: lsn, origin: 2, created_at: self.at, change }
    }

    fn hold(&self, id: &str, seats: &[&str]) -> Change {
        Change::HoldPlaced(HoldPlaced {
            hold_id: id.into(),
            show_id: self.show,
            seats: seats.iter().map(|s| s.to_string()).collect(),
            expires_at: self.at + chrono::Duration::minutes(5),
            idempotency_key: Some(format!("key-{id}")),
            created_at: self.at,
            client: Default::default(),
        })
    }

    fn confirm(&self, code: &str, hold: &str, seats: &[&str]) -> Change {
        Change::BookingConfirmed(BookingConfirmed {
            code: code.into(),
            show_id: self.show,
            hold_id: hold.into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            seats: seats.iter().map(|s| s.to_string()).collect(),
            total_cents: 2400,
            created_at: self.at,
        })
    }

    fn end(&self, ids: &[&str], state: &str) -> Change {
        Change::HoldsEnded(HoldsEnded {
            show_id: self.show,
            hold_ids: ids.iter().map(|s| s.to_string()).collect(),
            state: state.into(),
        })
    }

    fn cancel(&self, code: &str) -> Change {
        Change::BookingCancelled(BookingCancelled { code: code.into(), show_id: self.show, at: self.at })
    }

    fn sent(&self, code: &str, kind: &str) -> Change {
        Change::MailSent(MailSent { message_id: marquee::mail::message_id(code, kind) })
    }
}

/// The entries both logs share (epoch 1): a catalog, then a sale with every kind of
/// change the suffix will touch.
fn shared(log: &Log, catalog: &CatalogChange) -> Vec<LogRecord> {
    let changes = vec![
        Change::Catalog(Box::new(catalog.clone())),
        Change::EpochStart,
        log.hold("h1", &["A1", "A2"]),
        log.confirm("BOOK1", "h1", &["A1", "A2"]),
        log.hold("h2", &["B1"]),
        log.hold("h3", &["B2"]),
        log.hold("h4", &["C1", "C2"]),
        log.confirm("BOOK4", "h4", &["C1", "C2"]),
        log.hold("h5", &["D1"]),
        log.confirm("BOOK5", "h5", &["D1"]),
    ];
    changes.into_iter().enumerate().map(|(i, c)| log.rec(i as i64 + 1, 1, c)).collect()
}

/// What the old master logged after the shared entries and nobody committed: every kind
/// of entry that can be undone, touching rows the shared entries made.
fn lost_suffix(log: &Log, from: i64) -> Vec<LogRecord> {
    let changes = vec![
        log.confirm("BOOK2", "h2", &["B1"]),
        log.end(&["h3"], "expired"),
        log.cancel("BOOK1"),
        log.sent("BOOK4", "confirmed"),
        log.hold("h6", &["E1", "E2"]),
        log.confirm("BOOK6", "h6", &["E1", "E2"]),
        log.sent("BOOK6", "confirmed"),
        log.cancel("BOOK6"),
        log.hold("h7", &["F1"]),
        log.end(&["h7"], "released"),
        Change::Admin(AdminChange::SessionOpened {
            session: "a".repeat(64),
            expires_at: log.at + chrono::Duration::hours(1),
            client_addr: Some("127.0.0.1".into()),
        }),
        Change::EpochStart,
    ];
    changes.into_iter().enumerate().map(|(i, c)| log.rec(from + i as i64, 1, c)).collect()
}

/// The new master's entries (epoch 2) from the same point: some of the same rows, the
/// other way.
fn winners(log: &Log, from: i64) -> Vec<LogRecord> {
    let changes = vec![
        Change::EpochStart,
        log.end(&["h2"], "expired"),
        log.confirm("BOOK3", "h3", &["B2"]),
        log.cancel("BOOK4"),
        log.sent("BOOK5", "confirmed"),
        log.hold("h8", &["E1"]),
    ];
    changes.into_iter().enumerate().map(|(i, c)| log.rec(from + i as i64, 2, c)).collect()
}

fn fixture() -> (Log, CatalogChange) {
    let (catalog, show) = common::show_change(700, 6, 8, chrono::Duration::days(2));
    let at = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap().naive_utc();
    (Log { show, at }, catalog)
}

#[actix_rt::test]
async fn a_cut_undoes_the_lost_entries_and_leaves_the_tables_as_the_winners_log_makes_them() {
    let (log, catalog) = fixture();
    let kept = shared(&log, &catalog);
    let t = kept.len() as i64;
    let lost = lost_suffix(&log, t + 1);
    let won = winners(&log, t + 1);

    // The node that followed the old master, then the new one.
    let cut = Node::start();
    cut.writer.persist(None, kept.iter().chain(&lost).cloned().collect()).await.unwrap();
    let before = cut.tables();
    let pos = cut.writer.persist(Some(t), won.clone()).await.unwrap();
    let last = won.last().unwrap();
    assert_eq!((pos.last_lsn, pos.last_epoch), (last.lsn, last.epoch));
    let stats = cut.writer.stats();
    assert_eq!(stats.undone.load(Ordering::SeqCst), lost.len() as u64, "every lost entry undone");
    assert_eq!(stats.rebuilds.load(Ordering::SeqCst), 0, "no rebuild");

    assert_ne!(before, cut.tables());
    cut.assert_tables_as_if_only(&kept, &won).await;

    // A cut that takes out nothing but appends nothing either ends the log at the cut.
    let pos = cut.writer.persist(Some(t + 2), vec![]).await.unwrap();
    assert_eq!((pos.last_lsn, pos.last_epoch), (t + 2, 2));
    assert_eq!(cut.writer.stats().undone.load(Ordering::SeqCst), lost.len() as u64 + won.len() as u64 - 2);

    cut.drop_schema();
}

#[actix_rt::test]
async fn a_lost_entry_that_cannot_be_undone_rebuilds_or_in_a_compacted_log_asks_for_a_snapshot() {
    let (log, catalog) = fixture();
    let kept = shared(&log, &catalog);
    let t = kept.len() as i64;
    // A catalog import among the lost entries: what it replaced is not in it.
    let mut lost = lost_suffix(&log, t + 1);
    let mut renamed = catalog.clone();
    renamed.movies[0].title = "Renamed by the lost import".into();
    lost.insert(3, log.rec(0, 1, Change::Catalog(Box::new(renamed))));
    for (i, r) in lost.iter_mut().enumerate() {
        r.lsn = t + 1 + i as i64;
    }
    let won = winners(&log, t + 1);

    let rebuilt = Node::start();
    rebuilt.writer.persist(None, kept.iter().chain(&lost).cloned().collect()).await.unwrap();
    rebuilt.writer.persist(Some(t), won.clone()).await.unwrap();
    assert_eq!(rebuilt.writer.stats().rebuilds.load(Ordering::SeqCst), 1);
    assert_eq!(rebuilt.writer.stats().undone.load(Ordering::SeqCst), 0);
    rebuilt.assert_tables_as_if_only(&kept, &won).await;

    // The same in a compacted log: it cannot be rebuilt, so nothing changes and the
    // error says a snapshot is needed.
    let compacted = Node::start();
    compacted.writer.persist(None, kept.iter().chain(&lost).cloned().collect()).await.unwrap();
    {
        let mut conn = compacted.db.get().unwrap();
        marquee::db::node::save_base(&mut conn, 3, 1).unwrap();
    }
    let before = compacted.tables();
    let err = compacted.writer.persist(Some(t), won.clone()).await.unwrap_err();
    assert!(matches!(err, WalError::NeedsSnapshot(_)), "{err}");
    assert!(err.to_string().contains("(catalog) cannot be undone"), "{err}");
    assert_eq!(compacted.tables(), before, "nothing changed");
    // Without the import among them, the compacted log's entries are undone.
    compacted.writer.persist(Some(t + 4), vec![]).await.unwrap();
    assert_eq!(compacted.writer.stats().undone.load(Ordering::SeqCst), lost.len() as u64 - 4);

    for n in [rebuilt, compacted] {
        n.drop_schema();
    }
}

/// The inverses rest on each booking being cancelled at most once per log. Should a lost
/// entry repeat a cancel the shared log already holds, undoing it would take the seats
/// again; the master's entries then run into them, and the writer rebuilds instead of
/// failing for good, ending with the winner's tables all the same.
#[actix_rt::test]
async fn an_undo_that_leaves_a_row_the_winner_conflicts_with_falls_back_to_a_rebuild() {
    let (log, catalog) = fixture();
    let mut kept = shared(&log, &catalog);
    kept.push(log.rec(kept.len() as i64 + 1, 1, log.cancel("BOOK5")));
    let t = kept.len() as i64;
    // A repeat of the cancel the shared log holds (the actors never write one).
    let lost = vec![log.rec(t + 1, 1, log.cancel("BOOK5"))];
    let won = vec![
        log.rec(t + 1, 2, Change::EpochStart),
        log.rec(t + 2, 2, log.hold("h9", &["D1"])),
        log.rec(t + 3, 2, log.confirm("BOOK9", "h9", &["D1"])),
    ];

    let cut = Node::start();
    cut.writer.persist(None, kept.iter().chain(&lost).cloned().collect()).await.unwrap();
    cut.writer.persist(Some(t), won.clone()).await.unwrap();
    assert_eq!(cut.writer.stats().rebuilds.load(Ordering::SeqCst), 1, "the conflict sent it to the slow path");
    assert_eq!(cut.writer.stats().undone.load(Ordering::SeqCst), 0);
    cut.assert_tables_as_if_only(&kept, &won).await;
    cut.drop_schema();
}

/// A node whose log holds the shared entries alone, and those entries.
async fn with_shared() -> (Log, Vec<LogRecord>, Node) {
    let (log, catalog) = fixture();
    let kept = shared(&log, &catalog);
    let node = Node::start();
    node.writer.persist(None, kept.clone()).await.unwrap();
    (log, kept, node)
}

/// A batch of a sale's entries is one SQL text that starts a transaction and commits it
/// (`store_batch`). One that fails half-way (here its third entry, a hold, reuses a hold's
/// id) stores none of its rows, leaves no transaction open and the session's foreign-key
/// checks on; the next batch is stored whole.
#[actix_rt::test]
async fn a_batch_that_fails_half_way_stores_nothing_and_leaves_the_session_as_it_was() {
    use diesel::prelude::*;
    use marquee::wal::apply::{store_batch, ForeignKeys};
    #[derive(QueryableByName)]
    struct Session {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        fk: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        open: i64,
    }
    let session = |c: &mut diesel::MysqlConnection| {
        let s: Session = diesel::sql_query("SELECT @@SESSION.foreign_key_checks AS fk, @@in_transaction AS open")
            .get_result(c)
            .unwrap();
        (s.fk, s.open)
    };

    let (log, kept, node) = with_shared().await;
    let t = kept.len() as i64;
    let before = node.tables();
    let failing = vec![
        log.rec(t + 1, 1, log.hold("h10", &["E5"])),
        log.rec(t + 2, 1, log.confirm("BOOK10", "h10", &["E5"])),
        log.rec(t + 3, 1, log.hold("h1", &["E6"])),
    ];
    let good = vec![log.rec(t + 1, 1, log.hold("h10", &["E5"])), log.rec(t + 2, 1, log.hold("h11", &["E6"]))];
    let mut conn = node.db.get().unwrap();
    for keys in [ForeignKeys::Checked, ForeignKeys::Unchecked] {
        let err = store_batch(&mut conn, &failing, keys).unwrap_err();
        assert!(err.to_string().contains("Duplicate entry"), "{err}");
        assert_eq!(session(&mut conn), (1, 0), "{keys:?}: foreign-key checks on, no transaction open");
        assert_eq!(node.tables(), before, "{keys:?}: nothing of the batch stored");
    }
    store_batch(&mut conn, &good, ForeignKeys::Unchecked).unwrap();
    assert_eq!(session(&mut conn), (1, 0));
    drop(conn);
    node.assert_tables_as_if_only(&kept, &good).await;
    node.drop_schema();
}

/// A master's batch with one change the database refuses (a hold whose id is taken): the
/// batch as one transaction fails, and each change is then committed alone, so only that
/// one fails; the log goes on with no gap and no trace of the refused change.
#[actix_rt::test]
async fn a_refused_change_fails_alone_and_the_log_keeps_no_gap() {
    let (log, kept, node) = with_shared().await;
    let t = kept.len() as i64;
    let master =
        LogWriter::start_alone(node.db.clone(), marquee::actors::lamport::SharedClock::starting_at(0), 1).unwrap();
    // Queued together (each append is queued as it is called), so they meet in a batch
    // unless the writer takes the first before the others arrive: either way only the
    // refused one may fail.
    let writes: Vec<_> = [log.hold("h20", &["E7"]), log.hold("h1", &["E8"]), log.hold("h21", &["E9"])]
        .into_iter()
        .map(|c| master.append(c))
        .collect();
    let results = futures::future::join_all(writes).await;
    assert!(matches!(results[1], Err(WalError::Conflict(_))), "{:?}", results[1].as_ref().err());
    let lsns: Vec<i64> = [&results[0], &results[2]].iter().map(|r| r.as_ref().unwrap().lsn).collect();
    assert_eq!(lsns, [t + 1, t + 2], "the stored changes follow the log's end, with no gap");
    let mut conn = node.db.get().unwrap();
    let stored = marquee::wal::writer::read_log(&mut conn, t, 100).unwrap();
    assert_eq!(stored.iter().map(|r| r.lsn).collect::<Vec<_>>(), [t + 1, t + 2]);
    drop(conn);
    drop(master);
    let mut expected = kept.clone();
    expected.extend(stored);
    node.assert_tables_as_if_only(&expected, &[]).await;
    node.drop_schema();
}
