//! A batch's rows as one SQL text of several statements, sent in one round trip
//! (`batch_execute`) instead of a prepare, an execute and a close per statement. The log
//! writer's commit is the one serial step of every write, and under load most of its time
//! went to those round trips and to parsing statements prepared once and thrown away.
//!
//! No value is ever spliced in as it was typed: numbers are formatted, times are
//! fixed-format literals of digits, and a string goes one of two ways, both with a utf8mb4
//! introducer:
//! - quoted as it is (`_utf8mb4'C7,C8'`) when it holds no quote, no backslash and no NUL:
//!   those are the only characters a quoted literal treats specially (whatever the
//!   `sql_mode`), and no byte of a UTF-8 sequence can be one of them. Almost every value of
//!   a sale (ids, seats, states, the log's JSON) goes this way, which the server reads
//!   faster than hex: a sale's 230 batches (28,000 entries), replayed on one connection,
//!   took it 11 % less CPU and 18 % less time;
//! - otherwise as a hex literal (`_utf8mb4 X'..'`: there are no quotes for a value to close).
use chrono::NaiveDateTime;
use std::fmt::Write;

/// Statements separated by `;`, to run together.
#[derive(Debug, Default)]
pub struct SqlText {
    sql: String,
}

/// The values of one row (or one `IN` list), comma-separated as they are added.
pub struct Values<'a> {
    sql: &'a mut String,
    first: bool,
}

impl SqlText {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.sql
    }

    /// The text's length in bytes (a caller sends a long text in parts).
    pub fn len(&self) -> usize {
        self.sql.len()
    }

    /// `head` (`INSERT INTO t (a, b) VALUES`) and one parenthesised row per item of `rows`.
    pub fn insert<R>(&mut self, head: &'static str, rows: &[R], row: impl FnMut(&mut Values<'_>, &R)) {
        self.upsert(head, rows, "", row);
    }

    /// As [`insert`](Self::insert), then `ON DUPLICATE KEY UPDATE update` unless `update`
    /// is empty.
    pub fn upsert<R>(
        &mut self,
        head: &'static str,
        rows: &[R],
        update: &'static str,
        mut row: impl FnMut(&mut Values<'_>, &R),
    ) {
        if rows.is_empty() {
            return;
        }
        self.sql.push_str(head);
        for (i, r) in rows.iter().enumerate() {
            self.sql.push_str(if i == 0 { " (" } else { ",(" });
            row(&mut Values { sql: &mut self.sql, first: true }, r);
            self.sql.push(')');
        }
        if !update.is_empty() {
            self.sql.push_str(" ON DUPLICATE KEY UPDATE ");
            self.sql.push_str(update);
        }
        self.sql.push_str(";\n");
    }

    /// A statement of fixed text (`COMMIT`).
    pub fn statement(&mut self, sql: &'static str) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
    }

    /// Takes the text, leaving this one empty.
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.sql)
    }

    /// `UPDATE table SET column = value WHERE id IN (ids)`, and with `only_if`,
    /// `AND column = only_if`.
    pub fn set_where_id_in(
        &mut self,
        table: &'static str,
        column: &'static str,
        value: &str,
        ids: &[String],
        only_if: Option<&str>,
    ) {
        if ids.is_empty() {
            return;
        }
        let _ = write!(self.sql, "UPDATE {table} SET {column} = ");
        push_str_literal(&mut self.sql, value);
        self.sql.push_str(" WHERE id IN (");
        let mut list = Values { sql: &mut self.sql, first: true };
        for id in ids {
            list.str(id);
        }
        self.sql.push(')');
        if let Some(current) = only_if {
            let _ = write!(self.sql, " AND {column} = ");
            push_str_literal(&mut self.sql, current);
        }
        self.sql.push_str(";\n");
    }
}

impl Values<'_> {
    fn next(&mut self) {
        if !self.first {
            self.sql.push(',');
        }
        self.first = false;
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.next();
        let _ = write!(self.sql, "{v}");
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.next();
        push_str_literal(self.sql, v);
        self
    }

    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.int(i64::from(v))
    }

    /// A double, in the shortest form that reads back as the same number (`3.40522e1`: an
    /// exponent makes it a DOUBLE literal, not a DECIMAL). Not a number or an infinity has
    /// no literal: NULL, which a NOT NULL column refuses.
    pub fn float(&mut self, v: f64) -> &mut Self {
        if !v.is_finite() {
            return self.null();
        }
        self.next();
        let _ = write!(self.sql, "{v:e}");
        self
    }

    pub fn date(&mut self, v: chrono::NaiveDate) -> &mut Self {
        self.next();
        let _ = write!(self.sql, "'{}'", v.format("%Y-%m-%d"));
        self
    }

    /// A time, to the millisecond (the columns are DATETIME(3); extra digits would be cut).
    /// Written field by field: chrono's `format` reads its pattern again on every call, and
    /// every row of a sale has a time or two (1.5 % of a node's CPU in a sale's profile).
    pub fn time(&mut self, v: NaiveDateTime) -> &mut Self {
        use chrono::{Datelike, Timelike};
        self.next();
        // A leap second's nanoseconds run past 10^9: it is written as the 59th second and
        // the milliseconds past it.
        let millis = v.nanosecond() % 1_000_000_000 / 1_000_000;
        let _ = write!(
            self.sql,
            "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{millis:03}'",
            v.year(),
            v.month(),
            v.day(),
            v.hour(),
            v.minute(),
            v.second()
        );
        self
    }

    pub fn opt_time(&mut self, v: Option<NaiveDateTime>) -> &mut Self {
        match v {
            Some(t) => self.time(t),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.next();
        self.sql.push_str("NULL");
        self
    }
}

/// `_utf8mb4'<v>'` when nothing in `v` is special inside quotes, else
/// `_utf8mb4 X'<hex of the UTF-8 bytes>'`.
fn push_str_literal(sql: &mut String, v: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if !v.bytes().any(|b| matches!(b, b'\'' | b'\\' | 0)) {
        sql.reserve(v.len() + 11);
        sql.push_str("_utf8mb4'");
        sql.push_str(v);
        sql.push('\'');
        return;
    }
    sql.reserve(v.len() * 2 + 12);
    sql.push_str("_utf8mb4 X'");
    for b in v.bytes() {
        sql.push(HEX[(b >> 4) as usize] as char);
        sql.push(HEX[(b & 15) as usize] as char);
    }
    sql.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value written as a row's only column: `I (<literal>);\n`.
    fn one(write: impl Fn(&mut Values<'_>)) -> String {
        let mut s = SqlText::default();
        s.insert("I", &[()], |v, ()| write(v));
        s.take()
    }

    #[test]
    fn a_string_with_a_quote_a_backslash_or_a_nul_is_hex_so_nothing_in_it_is_sql() {
        let mut s = SqlText::default();
        s.insert("INSERT INTO t (a, b, c) VALUES", &[("x'); DROP TABLE t; --", 7i64)], |v, r| {
            v.str(r.0).int(r.1).opt_str(None);
        });
        assert_eq!(
            s.as_str(),
            "INSERT INTO t (a, b, c) VALUES (_utf8mb4 X'7827293B2044524F50205441424C4520743B202D2D',7,NULL);\n"
        );
        assert!(!s.as_str().contains("DROP"));
        for v in ["O'Brien", "a\\'b", "C:\\x", "nul\0"] {
            let hex: String = v.bytes().map(|b| format!("{b:02X}")).collect();
            assert_eq!(
                one(|row| {
                    row.str(v);
                }),
                format!("I (_utf8mb4 X'{hex}');\n"),
                "{v:?}"
            );
        }
    }

    #[test]
    fn a_string_with_nothing_special_in_quotes_is_quoted_as_it_is() {
        let mut s = SqlText::default();
        s.insert("INSERT INTO t (a, b) VALUES", &[("1000003-QX9C", "Zoë; DROP TABLE t; -- \"x\" `y`")], |v, r| {
            v.str(r.0).str(r.1);
        });
        assert_eq!(
            s.as_str(),
            "INSERT INTO t (a, b) VALUES (_utf8mb4'1000003-QX9C',_utf8mb4'Zoë; DROP TABLE t; -- \"x\" `y`');\n"
        );
        // serde_json escapes a quote in a name with a backslash: such an entry goes as hex.
        let json = r#"{"kind":"hold_placed","seats":["C7","Ü9"],"name":"Zoë \"Z\""}"#;
        assert!(one(|row| {
            row.str(json);
        })
        .starts_with("I (_utf8mb4 X'7B22"));
    }

    #[test]
    fn rows_times_and_in_lists() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_micro_opt(13, 47, 3, 123_456).unwrap();
        let mut s = SqlText::default();
        s.insert("INSERT INTO t (a, b) VALUES", &[1i64, 2], |v, r| {
            v.int(*r).time(t);
        });
        s.set_where_id_in("h", "state", "é", &["a".into(), "b".into()], Some("active"));
        s.upsert("INSERT INTO u (a, b, c, d) VALUES", &[0.1f64], "b = VALUES(b)", |v, r| {
            v.float(*r).float(f64::NAN).bool(true).date(t.date());
        });
        s.set_where_id_in("h", "state", "x", &[], None);
        assert_eq!(
            s.as_str(),
            "INSERT INTO t (a, b) VALUES (1,'2026-11-25 13:47:03.123'),(2,'2026-11-25 13:47:03.123');\n\
             UPDATE h SET state = _utf8mb4'é' WHERE id IN (_utf8mb4'a',_utf8mb4'b') AND state = _utf8mb4'active';\n\
             INSERT INTO u (a, b, c, d) VALUES (1e-1,NULL,1,'2026-11-25') ON DUPLICATE KEY UPDATE b = VALUES(b);\n"
        );
    }

    #[test]
    fn a_time_is_the_text_of_chronos_pattern_but_a_leap_second_stays_in_its_minute() {
        // The same text as chrono's pattern, for early and late times of any field width.
        for t in [
            chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap().and_hms_milli_opt(0, 0, 0, 0).unwrap(),
            chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 999_999_999).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 6, 9).unwrap().and_hms_micro_opt(7, 5, 3, 9_999).unwrap(),
        ] {
            assert_eq!(
                one(|v| {
                    v.time(t);
                }),
                format!("I ('{}');\n", t.format("%Y-%m-%d %H:%M:%S%.3f"))
            );
        }
        // A leap second stays in its minute's last second (a DATETIME has no 60th, where
        // chrono's pattern writes one).
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_milli_opt(23, 59, 59, 1_500).unwrap();
        assert_eq!(
            one(|v| {
                v.time(leap);
            }),
            "I ('2016-12-31 23:59:59.500');\n"
        );
    }
}
