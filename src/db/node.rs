//! This node's durable election facts: its epoch and whom it accepted as master in it.
use super::schema::node_state;
use super::DbError;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

const EPOCH: &str = "epoch";
const VOTED_FOR: &str = "voted_for";
const BASE_LSN: &str = "log_base_lsn";
const BASE_EPOCH: &str = "log_base_epoch";

pub fn load(conn: &mut MysqlConnection) -> Result<(u64, Option<u64>), DbError> {
    let rows: Vec<(String, i64)> = node_state::table.select((node_state::name, node_state::value)).load(conn)?;
    let get = |k: &str| rows.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    Ok((get(EPOCH).unwrap_or(0).max(0) as u64, get(VOTED_FOR).filter(|v| *v > 0).map(|v| v as u64)))
}

pub fn save(conn: &mut MysqlConnection, epoch: u64, voted_for: Option<u64>) -> Result<(), DbError> {
    for (name, value) in [(EPOCH, epoch as i64), (VOTED_FOR, voted_for.unwrap_or(0) as i64)] {
        diesel::replace_into(node_state::table)
            .values((node_state::name.eq(name), node_state::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}

/// Where this node's log was compacted to (LSN, epoch): the entries up to it are only in the
/// tables. None: nothing was.
pub fn load_base(conn: &mut MysqlConnection) -> Result<Option<(i64, i64)>, DbError> {
    let rows: Vec<(String, i64)> = node_state::table.select((node_state::name, node_state::value)).load(conn)?;
    let get = |k: &str| rows.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    Ok(get(BASE_LSN).filter(|l| *l > 0).map(|l| (l, get(BASE_EPOCH).unwrap_or(0))))
}

pub fn save_base(conn: &mut MysqlConnection, lsn: i64, epoch: i64) -> Result<(), DbError> {
    for (name, value) in [(BASE_LSN, lsn), (BASE_EPOCH, epoch)] {
        diesel::replace_into(node_state::table)
            .values((node_state::name.eq(name), node_state::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}
