//! The deleted-target sweep: a page of the ledger joined by primary key to tblhosting (and
//! tblhostingaddons for addon rows); a plan whose service (addon) row is gone gets one
//! `deleted` request (marked the same way as adoption, `adopt`: its terminate runs after the
//! deletion grace period), unless its product (addon) keeps the plan or an admin kept it
//! (Keep the plan: the row's `kept_at`).

use std::collections::BTreeSet;

use crate::domain::Target;
use crate::store::{Result, Store, within};

/// The deleted-service sweep's page (after, page size).
/// A service is gone when its tblhosting row is; its plan is kept when the product (the one
/// the ledger recorded) has "Keep the Jetpack plan when a service is deleted" ticked
/// (configoption4, a WHMCS yes/no: anything but '' and '0' is yes, as lib/Hooks.php reads it)
/// or an admin kept it after the deletion (`kept_at`).
const SWEEP_SQL: &str = "SELECT l.id, l.service_id, l.addon_id,
            h.id IS NULL AND l.kept_at IS NULL AND COALESCE(p.configoption4 IN ('', '0'), 1) AS gone
     FROM mod_jetpack_ledger l
     LEFT JOIN tblhosting h ON h.id = l.service_id
     LEFT JOIN tblproducts p ON p.id = l.product_id
     WHERE l.id > ? AND l.addon_id = 0 ORDER BY l.id LIMIT ?";

/// The sweep's page where WHMCS has module addons: the ledger's addon rows too. An addon is
/// gone when its tblhostingaddons row is (WHMCS deletes a service's addons with it); its plan
/// is kept when its addon (the tbladdons row the ledger recorded) has "Keep the Jetpack plan"
/// ticked (its configoption4 in tblmodule_configuration, by the unique key).
const SWEEP_WITH_ADDONS_SQL: &str = "SELECT l.id, l.service_id, l.addon_id,
            l.kept_at IS NULL AND IF(l.addon_id = 0,
               h.id IS NULL AND COALESCE(p.configoption4 IN ('', '0'), 1),
               ha.id IS NULL AND COALESCE(k.value IN ('', '0'), 1)) AS gone
     FROM mod_jetpack_ledger l
     LEFT JOIN tblhosting h ON h.id = l.service_id
     LEFT JOIN tblproducts p ON p.id = l.product_id
     LEFT JOIN tblhostingaddons ha ON ha.id = l.addon_id
     LEFT JOIN tblmodule_configuration k ON k.entity_type = 'addon' AND k.entity_id = l.addon_def_id
          AND k.setting_name = 'configoption4'
     WHERE l.id > ? ORDER BY l.id LIMIT ?";

/// What one page of the deleted-service sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Ledger rows read.
    pub examined: u64,
    /// Terminate requests recorded.
    pub requested: u64,
    /// The last ledger id read: the next page starts after it (None: the end was reached).
    pub next: Option<u64>,
}

impl Store {
    /// One page of the deleted-service sweep: up to `page` ledger rows after ledger id
    /// `after`, each joined by primary key to tblhosting (an addon's to tblhostingaddons); a
    /// service or addon whose row is gone gets one `deleted` request, ever (marked like
    /// adoption).
    pub async fn sweep_deleted(&self, after: u64, page: u32) -> Result<Swept> {
        within(self.timeout, self.sweep(after, page)).await
    }

    /// The sweep's statement for this WHMCS: with its addons when it has module addons.
    pub(super) fn sweep_sql(&self) -> &'static str {
        if self.has_addons {
            SWEEP_WITH_ADDONS_SQL
        } else {
            SWEEP_SQL
        }
    }

    async fn sweep(&self, after: u64, page: u32) -> Result<Swept> {
        let rows: Vec<(u64, u32, u32, i64)> = sqlx::query_as(self.sweep_sql())
            .bind(after)
            .bind(page)
            .fetch_all(&self.pool)
            .await?;
        let gone: BTreeSet<Target> = rows
            .iter()
            .filter(|(_, _, _, gone)| *gone == 1)
            .map(|(_, s, a, _)| Target::from_ids(*s, *a))
            .collect();
        let mut out = Swept {
            examined: rows.len() as u64,
            next: (rows.len() as u64 >= u64::from(page))
                .then(|| rows.last().map(|(id, ..)| *id))
                .flatten(),
            ..Swept::default()
        };
        for target in gone {
            if self.terminate_gone(target).await? {
                out.requested += 1;
            }
        }
        Ok(out)
    }
}
