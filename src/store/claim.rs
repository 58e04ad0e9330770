//! Claiming due jobs: one short transaction leases a batch (two paths, by server version), then,
//! on the same connection and outside the transaction, one query reads the claimed rows back
//! together with everything the attempts need from WHMCS (the service, its product, the
//! product's custom fields with this service's values, whether the service has a recorded
//! failure, and WHMCS's Module Debug Mode), then the ledger and the other targets holding
//! plans on the same sites. A batch costs one pool acquire and a fixed handful of statements,
//! however many jobs it holds; the attempts themselves then read nothing. Only jobs of an
//! action this binary knows are claimed (a newer worker's are left for it, `known`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use boot_time::Instant;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{Connection, MySql, QueryBuilder, Row};

use super::known;
use super::ledger::{LedgerEntry, SiteHolder, holders_on, ledger_of};
use super::licences::{LicenceRow, licences_of};
use super::rows::{field_row, product_columns, service_row};
use super::whmcs::{addon_defs_by_id, addons_by_id, products_by_id};
use super::{
    ClaimPath, FieldRow, ProductRow, Result, ServiceRow, Store, parse_action, parse_requested_by,
    within,
};
use crate::backoff;
use crate::catalogue::Api;
use crate::domain::{Action, JobId, JobState, RequestedBy, SiteUrl, Target};

/// A job this worker holds a lease on, with the WHMCS rows read when it was claimed.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The job.
    pub id: JobId,
    /// The service or addon it acts for.
    pub target: Target,
    /// What to do.
    pub action: Action,
    /// Attempts used, including this one (DNS re-checks excluded).
    pub attempts: u32,
    /// The job's own attempt budget; None = the worker's setting.
    pub max_attempts: Option<u32>,
    /// DNS re-checks so far, including this one when `waiting` is set.
    pub dns_checks: u32,
    /// How long the plan has waited on DNS, when it is waiting.
    pub waiting_for: Option<Duration>,
    /// A previous provision call may have acted without us seeing the answer.
    pub outcome_unknown: bool,
    /// The fencing token every finishing write must present.
    pub lease_token: String,
    /// Who asked for it.
    pub requested_by: RequestedBy,
    /// The service and its product (or the addon with its catalogue row, module settings and
    /// parent's domain); None when the service (addon) no longer exists.
    pub service: Option<ServiceRow>,
    /// The product's (addon's) custom fields with this service's (addon's) value rows.
    pub fields: Vec<FieldRow>,
    /// The target has a failed job or a WHMCS Module Queue entry of ours (a success then
    /// resolves the queue entry).
    pub had_failure: bool,
    /// WHMCS's Module Debug Mode was on at claim time (API exchanges go to the module log).
    pub module_debug: bool,
    /// What the ledger holds for the target, read for terminates (the plans it cancels) and
    /// changes of plan (the plan the site has now).
    pub ledger: Vec<LedgerEntry>,
    /// The other targets (services, addons) holding plans on the sites `ledger` names, each
    /// with whether it is live: a terminate leaves a plan one of them still holds.
    pub site_holders: Vec<SiteHolder>,
    /// For a terminate of a service (addon) whose row is gone: the product (addon) its ledger
    /// names (the latest row's), whose credentials cancel what the ledger holds.
    pub gone_product: Option<ProductRow>,
    /// The target's licence rows (oldest first), read for a target whose product sells
    /// licences (or whose row is gone).
    pub licences: Vec<LicenceRow>,
    /// This process's boot-time clock (monotonic, counting a host suspend) just before the
    /// claim was sent: the lease (granted by the database at or after this instant) surely
    /// lasts until `claimed_at + lease`, less the clock-skew margin the holder keeps.
    pub claimed_at: Instant,
    /// Until when an acting call this process started for the job may still be in flight
    /// (shared by every clone of this claim): a job is never released before then.
    pub acting_until: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl ClaimedJob {
    /// Which Jetpack API the target's product (addon) sells through; a target whose row or
    /// product is gone is a licence target when it holds licence rows.
    pub fn api(&self) -> Api {
        match self.service.as_ref().and_then(|s| s.product.as_ref()) {
            Some(p) => p.api(),
            None if !self.licences.is_empty() => Api::Licence,
            None => Api::Plan,
        }
    }

    /// Whether an acting call for this job may still be in flight.
    pub fn may_be_acting(&self) -> bool {
        self.acting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| until > Instant::now())
    }
}

impl Store {
    /// Claims up to `limit` due jobs (queued, waiting on DNS, or running with an expired lease)
    /// for `owner`, leasing each for `lease`, and reads their WHMCS rows.
    pub async fn claim(&self, owner: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        within(self.timeout, self.claim_batch(owner, limit, lease)).await
    }

    async fn claim_batch(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>> {
        let batch = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut conn = self.pool.acquire().await?;
        // A deadlock or lock-wait timeout means "nothing claimed, try again" (it is also how
        // conflicts surface on Galera); a few quick retries, then report nothing claimed.
        for tries in 1..=backoff::CLAIM_CONFLICTS.tries {
            let claimed_at = Instant::now();
            let claimed = match self.claim_path {
                ClaimPath::SkipLocked => {
                    claim_skip_locked(&mut conn, &batch, owner, limit, lease).await
                }
                ClaimPath::Update => claim_update(&mut conn, &batch, owner, limit, lease).await,
            };
            match claimed {
                Err(e) if e.is_lock_conflict() => {
                    tracing::debug!(tries, "claim hit a lock conflict; trying again");
                    tokio::time::sleep(backoff::CLAIM_CONFLICTS.pause(tries)).await;
                }
                Err(e) => return Err(e),
                Ok(Leased::Nothing) => return Ok(Vec::new()),
                Ok(leased) => return claimed_jobs(&mut conn, &batch, leased, claimed_at).await,
            }
        }
        Ok(Vec::new())
    }
}

/// What a claim transaction leased.
enum Leased {
    /// No job was due.
    Nothing,
    /// These rows (the SKIP LOCKED path knows them).
    Ids(Vec<u64>),
    /// Some rows, known by their lease-token prefix (the UPDATE path).
    Some,
}

/// `SELECT … FOR UPDATE SKIP LOCKED` then an UPDATE by id, in one transaction.
async fn claim_skip_locked(
    conn: &mut MySqlConnection,
    batch: &str,
    owner: &str,
    limit: u32,
    lease: Duration,
) -> Result<Leased> {
    let mut tx = conn.begin().await?;
    let mut select = QueryBuilder::<MySql>::new(
        "SELECT id FROM mod_jetpack_jobs WHERE due_at <= UTC_TIMESTAMP(6) AND action IN ",
    );
    known::push_list(&mut select, &known::actions());
    select
        .push(" ORDER BY due_at, id LIMIT ")
        .push_bind(limit)
        .push(" FOR UPDATE SKIP LOCKED");
    let ids: Vec<(u64,)> = select.build_query_as().fetch_all(&mut *tx).await?;
    if ids.is_empty() {
        tx.rollback().await?;
        return Ok(Leased::Nothing);
    }
    let mut q = claim_update_head(batch, owner, lease);
    q.push(" WHERE id IN (");
    let mut list = q.separated(", ");
    for (id,) in &ids {
        list.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Leased::Ids(ids.into_iter().map(|(id,)| id).collect()))
}

/// One claim-by-token `UPDATE … ORDER BY … LIMIT` (servers without SKIP LOCKED).
async fn claim_update(
    conn: &mut MySqlConnection,
    batch: &str,
    owner: &str,
    limit: u32,
    lease: Duration,
) -> Result<Leased> {
    let mut q = claim_update_head(batch, owner, lease);
    q.push(" WHERE due_at <= UTC_TIMESTAMP(6) AND action IN ");
    known::push_list(&mut q, &known::actions());
    q.push(" ORDER BY due_at, id LIMIT ").push_bind(limit);
    let done = q.build().execute(&mut *conn).await?;
    Ok(if done.rows_affected() == 0 {
        Leased::Nothing
    } else {
        Leased::Some
    })
}

/// The batch's jobs with everything their attempts read: the rows of the claim query, then
/// the addon jobs' rows, the ledger (for terminates and changes) and, for a target whose
/// row is gone, the product its ledger names.
async fn claimed_jobs(
    conn: &mut MySqlConnection,
    batch: &str,
    leased: Leased,
    claimed_at: Instant,
) -> Result<Vec<ClaimedJob>> {
    let rows = claimed_rows(conn, batch, &leased).await?;
    let mut jobs = group_by_job(&rows, claimed_at)?;
    read_addons(conn, &mut jobs).await?;
    read_ledgers(conn, &mut jobs).await?;
    read_site_holders(conn, &mut jobs).await?;
    read_licences(conn, &mut jobs).await?;
    read_gone_products(conn, &mut jobs).await?;
    Ok(jobs)
}

/// The licence rows of the jobs whose product sells licences, or whose row is gone (one more
/// query, only when the batch holds such jobs).
async fn read_licences(conn: &mut MySqlConnection, jobs: &mut [ClaimedJob]) -> Result<()> {
    let targets: Vec<Target> = jobs
        .iter()
        .filter(|j| j.api() == Api::Licence || j.service.is_none())
        .map(|j| j.target)
        .collect();
    let mut licences = licences_of(conn, &targets).await?;
    for job in jobs.iter_mut() {
        job.licences = licences.remove(&job.target).unwrap_or_default();
    }
    Ok(())
}

/// The batch's job rows, each joined with its service, product, custom fields and values:
/// one row per (job, field, value row).
async fn claimed_rows(
    conn: &mut MySqlConnection,
    batch: &str,
    leased: &Leased,
) -> Result<Vec<MySqlRow>> {
    let mut q = QueryBuilder::<MySql>::new(concat!(
        "SELECT j.id, j.service_id, j.addon_id, j.action, j.attempts, j.max_attempts,
                j.dns_checks, j.outcome_unknown, j.lease_token, j.requested_by,
                TIMESTAMPDIFF(SECOND, j.waiting_since, UTC_TIMESTAMP(6)) AS waited,
                EXISTS(SELECT 1 FROM mod_jetpack_jobs x WHERE x.service_id = j.service_id
                         AND x.addon_id = j.addon_id
                         AND (x.state = 'failed' OR x.in_module_queue = 1)) AS had_failure,
                (SELECT c.value FROM tblconfiguration c WHERE c.setting = 'ModuleDebugMode'
                 ORDER BY c.id DESC LIMIT 1) AS module_debug,
                h.id AS hid, h.userid, h.packageid, CAST(h.domainstatus AS CHAR) AS status,
                p.id AS pid, ",
        product_columns!(),
        ", f.id AS field_id, f.fieldname, v.id AS value_id, v.value
         FROM mod_jetpack_jobs j
         LEFT JOIN tblhosting h ON h.id = j.service_id AND j.addon_id = 0
         LEFT JOIN tblproducts p ON p.id = h.packageid
         LEFT JOIN tblcustomfields f ON f.type = 'product' AND f.relid = h.packageid
         LEFT JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = j.service_id
         WHERE j.state = 'running' AND j.lease_token LIKE CONCAT("
    ));
    q.push_bind(batch.to_owned()).push(", ':%')");
    if let Leased::Ids(ids) = leased {
        // By primary key rather than by scanning every running row for the token.
        q.push(" AND j.id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
    }
    // No ORDER BY: sorting rows of several joined tables (with TEXT columns) would need an
    // on-disk temporary table for every claim. The rows are grouped and sorted here instead.
    Ok(q.build().fetch_all(&mut *conn).await?)
}

/// The claim query's rows grouped by job, each job's fields in (field, value row) order.
fn group_by_job(rows: &[MySqlRow], claimed_at: Instant) -> Result<Vec<ClaimedJob>> {
    let mut jobs: BTreeMap<JobId, ClaimedJob> = BTreeMap::new();
    for row in rows {
        let id = JobId(row.try_get("id")?);
        let job = match jobs.entry(id) {
            Entry::Occupied(job) => job.into_mut(),
            Entry::Vacant(slot) => slot.insert(job_from_row(row, id, claimed_at)?),
        };
        if let Some(field) = field_row(row)? {
            job.fields.push(field);
        }
    }
    let mut jobs: Vec<ClaimedJob> = jobs.into_values().collect();
    for job in &mut jobs {
        job.fields.sort_by_key(|f| (f.field_id, f.value_id));
    }
    Ok(jobs)
}

/// What the ledger holds for the jobs that need it: terminates (they cancel what the
/// partner holds), changes of plan (the plan the site has now) and addons' provisions (an
/// addon moved to another service leaves the site its ledger holds).
async fn read_ledgers(conn: &mut MySqlConnection, jobs: &mut [ClaimedJob]) -> Result<()> {
    let targets: Vec<Target> = jobs
        .iter()
        .filter(|j| j.action.spec().reads_ledger || matches!(j.target, Target::Addon { .. }))
        .map(|j| j.target)
        .collect();
    let mut ledger = ledger_of(conn, &targets).await?;
    for job in jobs.iter_mut() {
        job.ledger = ledger.remove(&job.target).unwrap_or_default();
    }
    Ok(())
}

/// The other targets on the sites a job may touch (one query by the site index): the sites
/// its ledger names, or, when it holds none (a terminate falls back to the order's Site URL),
/// every site its field values and parent domain could name. Who else holds a plan there,
/// and whether it is live.
async fn read_site_holders(conn: &mut MySqlConnection, jobs: &mut [ClaimedJob]) -> Result<()> {
    let per_job: Vec<Vec<String>> = jobs.iter().map(sites_of).collect();
    let mut sites: Vec<String> = per_job.iter().flatten().cloned().collect();
    sites.sort_unstable();
    sites.dedup();
    let holders = holders_on(conn, &sites).await?;
    for (job, mine) in jobs.iter_mut().zip(per_job) {
        job.site_holders = holders
            .iter()
            .filter(|h| mine.contains(&h.site))
            .cloned()
            .collect();
    }
    Ok(())
}

/// The sites a job may act on: its ledger's, or (none held) each value that reads as a site.
fn sites_of(job: &ClaimedJob) -> Vec<String> {
    if !job.ledger.is_empty() {
        return job.ledger.iter().map(|e| e.site.clone()).collect();
    }
    let parent = job
        .service
        .as_ref()
        .and_then(|s| s.parent_domain.as_deref());
    job.fields
        .iter()
        .filter_map(|f| f.value.as_deref())
        .chain(parent)
        .filter_map(|v| SiteUrl::parse(v).ok())
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// The addon jobs' rows: the addon, its catalogue row, module settings, parent's domain and
/// custom fields (one more query, only when the batch holds addon jobs).
async fn read_addons(conn: &mut MySqlConnection, jobs: &mut [ClaimedJob]) -> Result<()> {
    let ids: Vec<_> = jobs
        .iter()
        .filter_map(|j| match j.target {
            Target::Addon { addon, .. } => Some(addon),
            Target::Service(_) => None,
        })
        .collect();
    let mut addons = addons_by_id(conn, &ids).await?;
    for job in jobs.iter_mut() {
        if let Target::Addon { addon, .. } = job.target
            && let Some((mut row, fields)) = addons.remove(&addon)
        {
            // The job's target stays the one recorded (the keys of its rows).
            row.target = job.target;
            job.service = Some(row);
            job.fields = fields;
        }
    }
    Ok(())
}

/// A deleted service or addon (rare): its product (addon) comes from the ledger (or the
/// licence ledger).
async fn read_gone_products(conn: &mut MySqlConnection, jobs: &mut [ClaimedJob]) -> Result<()> {
    let recorded = |j: &ClaimedJob| -> Option<u32> {
        let planned = j.ledger.iter().rev().find_map(|e| match j.target {
            Target::Service(_) => e.product_id,
            Target::Addon { .. } => e.addon_def_id,
        });
        planned.or_else(|| j.licences.iter().rev().find_map(|l| l.product_id))
    };
    let (mut products, mut defs) = (Vec::new(), Vec::new());
    for job in jobs.iter().filter(|j| j.service.is_none()) {
        match (job.target, recorded(job)) {
            (Target::Service(_), Some(id)) => products.push(id),
            (Target::Addon { .. }, Some(id)) => defs.push(id),
            _ => {}
        }
    }
    let products = products_by_id(conn, &products).await?;
    let defs = addon_defs_by_id(conn, &defs).await?;
    for job in jobs.iter_mut().filter(|j| j.service.is_none()) {
        let from = match job.target {
            Target::Service(_) => &products,
            Target::Addon { .. } => &defs,
        };
        job.gone_product = recorded(job).and_then(|id| from.get(&id).cloned());
    }
    Ok(())
}

fn job_from_row(row: &MySqlRow, id: JobId, claimed_at: Instant) -> Result<ClaimedJob> {
    let action: String = row.try_get("action")?;
    let waited: Option<i64> = row.try_get("waited")?;
    let target = Target::from_ids(row.try_get("service_id")?, row.try_get("addon_id")?);
    let debug: Option<String> = row.try_get("module_debug")?;
    Ok(ClaimedJob {
        id,
        target,
        action: parse_action(&action)?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        dns_checks: row.try_get("dns_checks")?,
        waiting_for: waited.map(|s| Duration::from_secs(s.max(0).unsigned_abs())),
        outcome_unknown: row.try_get("outcome_unknown")?,
        lease_token: row.try_get("lease_token")?,
        requested_by: parse_requested_by(row.try_get("requested_by")?)?,
        service: service_row(row, target)?,
        fields: Vec::new(),
        had_failure: row.try_get("had_failure")?,
        module_debug: debug.is_some_and(|v| !v.is_empty() && v != "0"),
        ledger: Vec::new(),
        site_holders: Vec::new(),
        gone_product: None,
        licences: Vec::new(),
        claimed_at,
        acting_until: Default::default(),
    })
}

/// The claiming UPDATE's SET list. Order matters: MySQL assigns left to right, so everything
/// that reads the old `state` comes before the new one, running.
fn claim_update_head(batch: &str, owner: &str, lease: Duration) -> QueryBuilder<MySql> {
    let mut q = QueryBuilder::new(
        "UPDATE mod_jetpack_jobs SET
           reclaims = reclaims + IF(state = 'running', 1, 0),
           outcome_unknown = IF(state = 'running' AND action IN ",
    );
    known::push_list(&mut q, &Action::names_where(Action::may_provide));
    q.push(
        ", 1, outcome_unknown),
           attempts = attempts + IF(waiting_since IS NULL, 1, 0),
           dns_checks = dns_checks + IF(waiting_since IS NULL, 0, 1),
           lease_owner = ",
    );
    q.push_bind(owner.to_owned());
    q.push(", lease_token = CONCAT(");
    q.push_bind(batch.to_owned());
    q.push(", ':', id), lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL ");
    q.push_bind(super::jobs::micros(lease));
    q.push(" MICROSECOND, run_at = lease_expires_at, updated_at = UTC_TIMESTAMP(6), state = ");
    q.push_bind(JobState::Running.as_str());
    q
}
