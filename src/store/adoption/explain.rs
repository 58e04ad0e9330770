//! The EXPLAIN of every statement of the adoption scan that reads a WHMCS table, and of those
//! adopting a page that read the worker's jobs and requests, by name (for the tests and the
//! benchmark, which check that each reads by index). A statement of the addons is named as
//! the services' with `addons ` before it.

use sqlx::{MySql, QueryBuilder};

use super::discover::{discovery_query, pending_query};
use super::kind::Kind;
use super::recheck::{DUE_PAGE, FRESH_PAGE, all_page, postpone_sql, recheck_select};
use crate::rules::MODULE_NAME;
use crate::store::explain::{PlanStep, plan};
use crate::store::{Result, Store};

/// Each statement's name and its plan.
type Plans = Vec<(&'static str, Vec<PlanStep>)>;

impl Store {
    /// The EXPLAIN of every statement of the scan that reads a WHMCS table, and of those
    /// adopting a page that read the worker's jobs and requests (`adopt …`), by name, with
    /// the current watermarks (for tests and the benchmark); the addon statements (named
    /// `addons …`) when WHMCS has module addons.
    pub async fn explain_adoption(&self, products: &[u32]) -> Result<Plans> {
        let mut out = Vec::new();
        let mut q =
            QueryBuilder::<MySql>::new("EXPLAIN SELECT id FROM tblproducts WHERE servertype = ");
        q.push_bind(MODULE_NAME);
        out.push(("products", plan(&mut q, &self.pool).await?));
        for kind in self.kinds() {
            out.extend(self.explain_discovery(kind, products).await?);
            out.extend(self.explain_recheck(kind).await?);
            out.extend(self.explain_adopting(kind).await?);
        }
        let sweep = self
            .sweep_sql()
            .replacen('?', "0", 1)
            .replacen('?', "50", 1);
        out.push(("sweep", self.explain(&sweep).await?));
        out.extend(self.explain_window(products).await?);
        Ok(out)
    }

    /// The discovery page of one kind, from its current watermarks (`discover`), and the read
    /// of the Pending targets it found (`discover pending`).
    async fn explain_discovery(&self, kind: Kind, products: &[u32]) -> Result<Plans> {
        let scopes = kind.scopes(products);
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let marks = self.watermarks(kind).await?;
        let mut q = discovery_query(kind, &scopes, &marks, 500, "EXPLAIN ");
        let name = kind.pick(["discover", "addons discover"]);
        let page = plan(&mut q, &self.pool).await?;
        let mut q = pending_query(kind, &[1, 2, 3], "EXPLAIN ");
        let pending = kind.pick(["discover pending", "addons discover pending"]);
        Ok(vec![
            (name, page),
            (pending, plan(&mut q, &self.pool).await?),
        ])
    }

    /// The re-check's reads of one kind (`recheck due`, `recheck fresh`, `recheck all`) and
    /// its postponing (`postpone`).
    async fn explain_recheck(&self, kind: Kind) -> Result<Plans> {
        let select = recheck_select(kind).replacen('?', "'jetpack'", 1);
        let pages = [
            (
                kind.pick(["recheck due", "addons recheck due"]),
                DUE_PAGE.replacen('?', "25", 1),
            ),
            (
                kind.pick(["recheck fresh", "addons recheck fresh"]),
                FRESH_PAGE.replacen('?', "5", 1),
            ),
            (
                kind.pick(["recheck all", "addons recheck all"]),
                all_page(kind).replacen('?', "0", 1).replacen('?', "25", 1),
            ),
        ];
        let mut out = Vec::new();
        for (name, page) in pages {
            out.push((name, self.explain(&format!("{select}{page}")).await?));
        }
        let postpone = postpone_sql(kind) + "1, 2, 3)";
        let name = kind.pick(["postpone", "addons postpone"]);
        out.push((name, self.explain(&postpone).await?));
        Ok(out)
    }
}
