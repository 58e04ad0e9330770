//! The names the crate records its metrics under (the `metrics` facade; recording is a no-op
//! unless `run` serves `/metrics`, see `ops::prometheus`). A leaf: it imports nothing from the
//! crate, so the worker and the API client can record without depending on `ops`.

/// Counter: jobs claimed (label `action`).
pub const JOBS_CLAIMED: &str = "jetpack_jobs_claimed_total";
/// Counter: claims made (label `got`: `all` the jobs asked for, `fewer`, or `none`: nothing
/// more was due). A drain of a backlog makes mostly `all`; one `fewer` or `none` ends it.
pub const CLAIMS: &str = "jetpack_claims_total";
/// Counter: jobs finished done (label `action`).
pub const JOBS_DONE: &str = "jetpack_jobs_done_total";
/// Counter: jobs finished failed (label `action`).
pub const JOBS_FAILED: &str = "jetpack_jobs_failed_total";
/// Counter: attempts that failed transiently and were queued again.
pub const JOBS_RETRIED: &str = "jetpack_jobs_retried_total";
/// Counter: attempts that left a plan waiting on DNS (first wait and re-checks).
pub const JOBS_WAITING_DNS: &str = "jetpack_jobs_waiting_dns_total";
/// Counter: jobs released unfinished at shutdown.
pub const JOBS_RELEASED: &str = "jetpack_jobs_released_total";
/// Counter: attempts stopped before an acting call because the lease could not be confirmed.
pub const JOBS_ABANDONED: &str = "jetpack_jobs_abandoned_total";
/// Counter: jobs given back to the queue without a partner-API call, because their account's
/// breaker was open or its rate limit saturated (label `by`: `breaker`, `rate_limit`).
pub const API_CALLS_HELD: &str = "jetpack_api_calls_held_total";
/// Counter: requests applied (Create, Terminate, Retry from any source).
pub const REQUESTS_APPLIED: &str = "jetpack_requests_applied_total";
/// Gauge: jobs by state (label `state`).
pub const QUEUE_DEPTH: &str = "jetpack_queue_depth";
/// Gauge: seconds the oldest due, unclaimed job has waited.
pub const OLDEST_DUE_AGE: &str = "jetpack_oldest_due_job_age_seconds";
/// Gauge: jobs in their partner-API calls in this process (holding a call slot; at most
/// `JETPACK_CONCURRENCY`).
pub const IN_FLIGHT: &str = "jetpack_jobs_in_flight";
/// Histogram: partner API call duration (labels `endpoint`, `outcome`).
pub const API_LATENCY: &str = "jetpack_api_request_duration_seconds";
/// Counter: finished jobs pruned by housekeeping.
pub const JOBS_PRUNED: &str = "jetpack_jobs_pruned_total";
/// Status checks made by the reconciler (label `result`: fine, suspect, drift, error).
pub const RECONCILE_CHECKS: &str = "jetpack_reconcile_checks_total";
/// Confirmed drifts between WHMCS's intent and the partner (labels `kind`, `done`).
pub const DRIFTS: &str = "jetpack_drift_total";
