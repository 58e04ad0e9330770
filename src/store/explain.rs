//! Reading a statement's plan back: the EXPLAIN of a statement as (table, access, key) lines,
//! so the tests and the benchmark can check that the worker's statements read every table by
//! an index. The statements themselves stay with their modules.

use sqlx::{MySql, QueryBuilder, Row};

use super::{Result, Store};

/// One line of an EXPLAIN: the table, the access type and the key used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanStep {
    /// The table (alias) as EXPLAIN names it.
    pub table: String,
    /// The access type (`ALL` is a full scan).
    pub access: String,
    /// The index used, if any.
    pub key: Option<String>,
}

/// The EXPLAIN of a statement (built with its `EXPLAIN ` prefix) as (table, type, key) lines.
pub(super) async fn plan(
    q: &mut QueryBuilder<MySql>,
    pool: &sqlx::MySqlPool,
) -> Result<Vec<PlanStep>> {
    let rows = q.build().fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(PlanStep {
                table: row
                    .try_get::<Option<String>, _>("table")?
                    .unwrap_or_default(),
                access: row
                    .try_get::<Option<String>, _>("type")?
                    .unwrap_or_default(),
                key: row.try_get("key")?,
            })
        })
        .collect()
}

impl Store {
    /// The EXPLAIN of one statement given as SQL text (its values written in).
    pub(super) async fn explain(&self, sql: &str) -> Result<Vec<PlanStep>> {
        let mut q = QueryBuilder::<MySql>::new("EXPLAIN ");
        q.push(sql);
        plan(&mut q, &self.pool).await
    }
}
