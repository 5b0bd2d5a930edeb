//! The log writer's SQL text stores every string exactly as it was given, whichever way
//! it goes (quoted as it is, or hex), under either `sql_mode` a server may run with.
//! A real MariaDB reads the rows back.
mod common;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use marquee::wal::sql_text::SqlText;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Text)]
    v: String,
}

#[test]
fn every_string_reads_back_as_it_was_written() {
    let values: Vec<&str> = vec![
        "1000003-QX9CQRK3PDM64E9GY6TT",
        "C7,C8",
        "",
        "O'Brien",
        "''",
        "\\",
        "back\\slash",
        "\\'",
        "'; DROP TABLE t; --",
        "nul\0byte",
        "Zoë « lux » 🎬 日本",
        "quote \" and `tick` and $1 and %_ and /* x */ and -- y",
        "line\nbreak\ttab\rreturn",
        "\u{2028}\u{feff}",
        r#"{"kind":"hold_placed","seats":["C7"],"name":"Zoë \"Z\""}"#,
        r#"{"kind":"hold_placed","seats":["C7"],"expires_at":"2026-12-06T20:47:11.109"}"#,
    ];
    let name = common::fresh_db_name();
    let mut conn = MysqlConnection::establish(&common::server_url()).unwrap();
    diesel::sql_query(format!("CREATE DATABASE `{name}`")).execute(&mut conn).unwrap();
    let mut conn = MysqlConnection::establish(&format!("{}/{name}", common::server_url())).unwrap();
    conn.batch_execute("CREATE TABLE t (n BIGINT NOT NULL, v LONGTEXT CHARACTER SET utf8mb4 NOT NULL)").unwrap();
    let rows: Vec<(i64, &str)> = values.iter().enumerate().map(|(i, v)| (i as i64, *v)).collect();
    let mut sql = SqlText::default();
    sql.insert("INSERT INTO t (n, v) VALUES", &rows, |row, (n, v)| {
        row.int(*n).str(v);
    });
    for mode in ["", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES"] {
        conn.batch_execute(&format!("SET SESSION sql_mode = '{mode}'; DELETE FROM t")).unwrap();
        conn.batch_execute(sql.as_str()).unwrap();
        let back: Vec<Row> = diesel::sql_query("SELECT n, v FROM t ORDER BY n").load(&mut conn).unwrap();
        assert_eq!(back.len(), values.len(), "sql_mode '{mode}'");
        for r in back {
            assert_eq!(r.v, values[r.n as usize], "sql_mode '{mode}'");
        }
    }
    common::drop_schema(&name);
}
