//! The re-check: a page of candidates, of each kind, joined by primary key to their service
//! (product, order, invoice) or addon (its addon, parent service, order, invoice). A
//! candidate that qualifies ([`Kind::qualifies`]) is marked and requested (`adopt`); one no
//! longer Pending (or gone, or marked before) is dropped; any other is checked again after a
//! tenth of its age.

use sqlx::{AssertSqlSafe, MySql, QueryBuilder, Row};

use super::kind::{Kind, whmcs_id};
use crate::domain::{AddonId, ServiceId, Target};
use crate::rules::MODULE_NAME;
use crate::store::{Result, Store, within};

/// The due candidates, the longest overdue first (page size).
pub(super) const DUE_PAGE: &str = "WHERE c.next_check_at <= UTC_TIMESTAMP(6)
             ORDER BY c.next_check_at LIMIT ?";

/// The due candidates of the most recent orders first (page size): a fresh order is seen at
/// once however many old ones are overdue.
pub(super) const FRESH_PAGE: &str = "WHERE c.next_check_at <= UTC_TIMESTAMP(6)
             ORDER BY c.found_at DESC LIMIT ?";

/// Every candidate of the kind, in id order (after, page size): `run --once` goes through
/// them all.
pub(super) fn all_page(kind: Kind) -> String {
    let id = kind.id_column();
    format!("WHERE c.{id} > ? ORDER BY c.{id} LIMIT ?")
}

/// The re-check of a page of candidates (module name, then the page's condition): each
/// candidate's target, whether it still waits (Pending, of a `jetpack` product or addon; an
/// addon whose parent service is gone no longer waits: as the AddonActivation hook, it needs
/// its service), whether it qualifies, and whether it was marked before.
pub(super) fn recheck_select(kind: Kind) -> String {
    let (columns, waiting, joins) = kind.pick([
        (
            "c.service_id AS id, CAST(c.service_id AS SIGNED) AS parent",
            "h.domainstatus = 'Pending' AND p.servertype = ?",
            "LEFT JOIN tblhosting h ON h.id = c.service_id
             LEFT JOIN tblproducts p ON p.id = h.packageid
             LEFT JOIN tblorders o ON o.id = h.orderid",
        ),
        (
            "c.addon_id AS id, CAST(COALESCE(a.hostingid, c.service_id) AS SIGNED) AS parent",
            "a.status = 'Pending' AND d.module = ? AND h.id IS NOT NULL",
            "LEFT JOIN tblhostingaddons a ON a.id = c.addon_id
             LEFT JOIN tbladdons d ON d.id = a.addonid
             LEFT JOIN tblhosting h ON h.id = a.hostingid
             LEFT JOIN tblorders o ON o.id = a.orderid",
        ),
    ]);
    format!(
        "SELECT {columns}, COALESCE({waiting}, 0) AS waiting, {qualifies} AS qualifies,
                {marked} AS marked
         FROM {candidates} c
         {joins}
         LEFT JOIN tblinvoices i ON i.id = o.invoiceid AND o.invoiceid <> 0 ",
        qualifies = kind.qualifies(),
        marked = kind.marked(&format!("c.{}", kind.id_column())),
        candidates = kind.candidates(),
    )
}

/// A candidate that is still waiting is checked again after a tenth of its age, at most an
/// hour later, spread over the second half of that (so the old ones do not fall due
/// together); ids bound after, then `)`.
pub(super) fn postpone_sql(kind: Kind) -> String {
    format!(
        "UPDATE {} SET next_check_at = UTC_TIMESTAMP(6) + INTERVAL FLOOR(
             LEAST(3600, TIMESTAMPDIFF(SECOND, found_at, UTC_TIMESTAMP(6)) DIV 10)
             * (0.5 + RAND() / 2) * 1000000) MICROSECOND
         WHERE {} IN (",
        kind.candidates(),
        kind.id_column()
    )
}

/// Which candidates a re-check reads. `Due` and `Fresh` read a page of services and a page of
/// addons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// Those due now, the longest overdue first (`run`).
    Due,
    /// Those due now, the most recent orders first (`run`, beside `Due`).
    Fresh,
    /// Every candidate after this one, due or not (`run --once`): the services in id order,
    /// then the addons.
    After(RecheckCursor),
}

/// Where a re-check of every candidate resumes: the services' candidates in id order, then
/// the addons'. The default is the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecheckCursor {
    /// After this service candidate (`ServiceId(0)`: from the start).
    Service(ServiceId),
    /// After this addon candidate (every service candidate has been read).
    Addon(AddonId),
}

impl Default for RecheckCursor {
    fn default() -> RecheckCursor {
        RecheckCursor::Service(ServiceId(0))
    }
}

impl From<ServiceId> for RecheckCursor {
    fn from(after: ServiceId) -> RecheckCursor {
        RecheckCursor::Service(after)
    }
}

impl RecheckCursor {
    /// After the candidate of this target.
    fn at(target: Target) -> RecheckCursor {
        match target {
            Target::Service(s) => RecheckCursor::Service(s),
            Target::Addon { addon, .. } => RecheckCursor::Addon(addon),
        }
    }

    /// The kind of candidate it is in.
    fn kind(self) -> Kind {
        match self {
            RecheckCursor::Service(_) => Kind::Service,
            RecheckCursor::Addon(_) => Kind::Addon,
        }
    }

    /// The id after which the candidates of `kind` are read: all of a later kind, none of an
    /// earlier one.
    fn after(self, kind: Kind) -> u32 {
        match (self, kind) {
            (RecheckCursor::Service(s), Kind::Service) => s.0,
            (RecheckCursor::Addon(a), Kind::Addon) => a.0,
            (cursor, kind) if cursor.kind() < kind => 0,
            _ => u32::MAX,
        }
    }
}

/// What one re-check page did (services and addons together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rechecked {
    /// Candidates read.
    pub examined: u64,
    /// Provision requests recorded.
    pub adopted: u64,
    /// Candidates that qualified but already had a job or request (marked, not queued).
    pub already: u64,
    /// Candidates dropped (no longer Pending, gone, or marked before).
    pub dropped: u64,
    /// Of `adopted`, the addons.
    pub adopted_addons: u64,
    /// Where the next page starts (None: the end was reached). `Due` and `Fresh`: Some when a
    /// page was full.
    pub next: Option<RecheckCursor>,
}

impl Rechecked {
    /// Candidates the page settled (adopted, marked as already requested, or dropped): they
    /// are no longer candidates. A page that settled some may be followed by another at once.
    pub fn settled(&self) -> u64 {
        self.adopted + self.already + self.dropped
    }

    /// Adds a later page of another kind; the first page that names a next one wins.
    fn add(&mut self, other: &Rechecked) {
        self.examined += other.examined;
        self.adopted += other.adopted;
        self.already += other.already;
        self.dropped += other.dropped;
        self.adopted_addons += other.adopted_addons;
        self.next = self.next.or(other.next);
    }
}

/// One candidate as the re-check sees it.
struct Candidate {
    /// The service, or the addon with its parent (as tblhostingaddons names it now).
    target: Target,
    waiting: bool,
    qualifies: bool,
    marked: bool,
}

impl Candidate {
    /// One row of a [`recheck_select`] page of `kind`.
    fn read(kind: Kind, row: &sqlx::mysql::MySqlRow) -> Result<Candidate> {
        let parent = ServiceId(whmcs_id(row.try_get("parent")?));
        Ok(Candidate {
            target: kind.target(row.try_get("id")?, parent),
            waiting: row.try_get::<i64, _>("waiting")? == 1,
            qualifies: row.try_get::<i64, _>("qualifies")? == 1,
            marked: row.try_get::<i64, _>("marked")? == 1,
        })
    }
}

impl Store {
    /// Re-checks a page of candidates (by primary key joins to their service or addon,
    /// product or addon definition, order and invoice): qualifying ones are marked and
    /// requested, those no longer waiting are dropped. `Due` and `Fresh` read up to `page`
    /// services and up to `page` addons; `After` up to `page` of the one kind its cursor is
    /// in (and, when that kind ends on a short page, the first page of the next).
    pub async fn recheck_candidates(&self, which: Recheck, page: u32) -> Result<Rechecked> {
        within(self.timeout, self.recheck(which, page)).await
    }

    async fn recheck(&self, which: Recheck, page: u32) -> Result<Rechecked> {
        let mut out = Rechecked::default();
        for kind in self.kinds() {
            if let Recheck::After(cursor) = which {
                if kind < cursor.kind() {
                    continue;
                }
                if out.next.is_some() {
                    break;
                }
            }
            out.add(&self.recheck_page(kind, which, page).await?);
        }
        Ok(out)
    }

    /// The candidates of one kind a re-check reads.
    async fn recheck_rows(
        &self,
        kind: Kind,
        which: Recheck,
        page: u32,
    ) -> Result<Vec<sqlx::mysql::MySqlRow>> {
        let (condition, after) = match which {
            Recheck::Due => (DUE_PAGE.to_owned(), None),
            Recheck::Fresh => (FRESH_PAGE.to_owned(), None),
            Recheck::After(cursor) => (all_page(kind), Some(cursor.after(kind))),
        };
        let sql = format!("{}{condition}", recheck_select(kind));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(MODULE_NAME);
        if let Some(after) = after {
            q = q.bind(after);
        }
        Ok(q.bind(page).fetch_all(&self.pool).await?)
    }

    /// Re-checks one page of one kind of candidate; `next` names where the next page of
    /// that kind starts (None: the page was not full).
    async fn recheck_page(&self, kind: Kind, which: Recheck, page: u32) -> Result<Rechecked> {
        let rows = self.recheck_rows(kind, which, page).await?;
        let candidates = rows
            .iter()
            .map(|row| Candidate::read(kind, row))
            .collect::<Result<Vec<_>>>()?;
        let full = candidates.len() as u64 >= u64::from(page);
        let (mut adopt, mut drop, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for c in &candidates {
            if !c.waiting || c.marked {
                drop.push(c.target.entity_id());
            } else if c.qualifies {
                adopt.push(c.target);
            } else {
                later.push(c.target.entity_id());
            }
        }
        let adopted = self.adopt_candidates(kind, &adopt, &drop).await?;
        self.postpone_candidates(kind, &later).await?;
        Ok(Rechecked {
            examined: candidates.len() as u64,
            adopted: adopted.requested,
            already: adopted.already,
            dropped: drop.len() as u64,
            adopted_addons: kind.pick([0, adopted.requested]),
            next: candidates
                .last()
                .filter(|_| full)
                .map(|c| RecheckCursor::at(c.target)),
        })
    }

    /// Candidates still waiting (service or addon ids): due again after a tenth of their age
    /// (at most an hour).
    async fn postpone_candidates(&self, kind: Kind, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(postpone_sql(kind));
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&self.pool).await?;
        Ok(())
    }
}
