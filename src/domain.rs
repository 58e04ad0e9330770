//! The nouns shared by every module: job and service ids, job actions and states, who asked,
//! and the validated order inputs (plan, site URL), with the plans, limits and texts of
//! `rules.json` (see `rules`). Parsing constructors only; no I/O.

use std::fmt;
use std::sync::LazyLock;

use crate::rules::{self, Reasons, render};

/// A row id in `mod_jetpack_jobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A WHMCS service id (`tblhosting.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct ServiceId(pub u32);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A WHMCS product addon bought for a service (`tblhostingaddons.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct AddonId(pub u32);

impl fmt::Display for AddonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a job acts for (`service_id`, `addon_id` of the worker's tables): a service sold as
/// a standalone Jetpack product, or one Jetpack addon on a service (docs/addons.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `tblhosting.id`
    Service(ServiceId),
    /// `tblhostingaddons.id`, with its parent service.
    Addon {
        /// The addon bought.
        addon: AddonId,
        /// Its parent service (`tblhostingaddons.hostingid` when the request was recorded).
        service: ServiceId,
    },
}

impl Target {
    /// From the stored pair: `addon_id` 0 is the service itself.
    pub fn from_ids(service: u32, addon: u32) -> Target {
        match addon {
            0 => Target::Service(ServiceId(service)),
            a => Target::Addon {
                addon: AddonId(a),
                service: ServiceId(service),
            },
        }
    }

    /// The service (an addon's parent).
    pub fn service(self) -> ServiceId {
        match self {
            Target::Service(s) | Target::Addon { service: s, .. } => s,
        }
    }

    /// The stored `addon_id` (0 for a service).
    pub fn addon_id(self) -> u32 {
        match self {
            Target::Service(_) => 0,
            Target::Addon { addon, .. } => addon.0,
        }
    }

    /// The id WHMCS keys this target's custom-field values and Module Queue rows by
    /// (`tblhosting.id` or `tblhostingaddons.id`).
    pub fn entity_id(self) -> u32 {
        match self {
            Target::Service(s) => s.0,
            Target::Addon { addon, .. } => addon.0,
        }
    }

    /// `tblmodulequeue.service_type` for this target.
    pub fn module_queue_type(self) -> &'static str {
        match self {
            Target::Service(_) => "service",
            Target::Addon { .. } => "addon",
        }
    }
}

impl From<ServiceId> for Target {
    fn from(s: ServiceId) -> Target {
        Target::Service(s)
    }
}

/// How messages name the target: `Service ID: 12` or `Addon ID: 5 (Service ID: 12)`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service(s) => write!(f, "Service ID: {s}"),
            Target::Addon { addon, service } => {
                write!(f, "Addon ID: {addon} (Service ID: {service})")
            }
        }
    }
}

pub use crate::catalogue::Action;

/// The lifecycle state of a job (`mod_jetpack_jobs.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its `run_at`.
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    /// Provisioned as a pending plan; re-checked on the DNS schedule.
    WaitingDns,
    /// Finished successfully.
    Done,
    /// Finished with an error an admin has to look at.
    Failed,
    /// Superseded before it reached the API.
    Cancelled,
}

impl JobState {
    /// Done, failed or cancelled: the job will not run again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }

    /// Every state, in display order.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::WaitingDns,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::WaitingDns => "waiting_dns",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The stored value (padding and alignment apply).
impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// As the stored value, so `status --json` shows what the table holds.
impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who asked for a job (`mod_jetpack_requests.requested_by`, copied to the job's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RequestedBy {
    /// The PHP module's CreateAccount/TerminateAccount.
    Module,
    /// An admin button in WHMCS.
    Admin,
    /// `jetpack-worker enqueue` / `requeue`.
    Cli,
    /// The worker's adoption of paid Pending services.
    Adopt,
    /// The module's WHMCS hooks (hooks.php: an order paid or accepted, a service deleted).
    Hook,
    /// The worker's reconciler: drift between what WHMCS intends and what the partner holds.
    Reconcile,
}

impl RequestedBy {
    /// Every source of requests.
    pub const ALL: [RequestedBy; 6] = [
        RequestedBy::Module,
        RequestedBy::Admin,
        RequestedBy::Cli,
        RequestedBy::Adopt,
        RequestedBy::Hook,
        RequestedBy::Reconcile,
    ];

    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestedBy::Module => "module",
            RequestedBy::Admin => "admin",
            RequestedBy::Cli => "cli",
            RequestedBy::Adopt => "adopt",
            RequestedBy::Hook => "hook",
            RequestedBy::Reconcile => "reconcile",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<RequestedBy> {
        RequestedBy::ALL.into_iter().find(|by| by.as_str() == s)
    }
}

/// The stored value.
impl fmt::Display for RequestedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Plans and products the partner API provisions: the original module's four plans and the
/// newer standalone product slugs, as `rules.json` lists them.
pub static ALLOWED_PLANS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| rules::plan_slugs().collect());

/// A plan slug the partner API knows, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan(String);

impl Plan {
    /// Accepts a plan in any case and with surrounding spaces (`" Premium "` → `premium`).
    pub fn parse(raw: &str) -> Option<Plan> {
        let slug = raw.trim().to_ascii_lowercase();
        ALLOWED_PLANS.contains(&slug.as_str()).then_some(Plan(slug))
    }

    /// The slug sent to the API.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Standalone products (backups, scan, anti-spam) must be named when cancelling.
    pub fn is_standalone_product(&self) -> bool {
        rules::rules()
            .plans
            .iter()
            .any(|p| p.standalone && p.slug == self.0)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site URL normalised as the partner API wants it: no scheme, no trailing slash, host in
/// lower case (IDN hosts as punycode), optional port and path (`example.com/blog`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteUrl {
    site: String,
    host: String,
}

/// Why a Site URL value is unusable; the text (from `rules.json`) is shown to admins after
/// "the Site URL 'value'".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteUrlError {
    /// Empty or only spaces.
    Empty,
    /// Anything that does not parse as a web address with a host name: the reason.
    Invalid(String),
}

impl fmt::Display for SiteUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts = &rules::rules().site_url_problems;
        match self {
            SiteUrlError::Empty => f.write_str(&texts.empty),
            SiteUrlError::Invalid(reason) => {
                f.write_str(&render(&texts.invalid, &[("reason", reason)]))
            }
        }
    }
}

impl std::error::Error for SiteUrlError {}

impl SiteUrl {
    /// Longest site URL accepted, in bytes (`rules.json`: host 253, colon, port 5, path 512);
    /// longer values are junk, not domains.
    pub fn max_len() -> usize {
        rules::rules().limits.site_url_max_len
    }

    /// Normalises a customer-entered Site URL: checked as text, its http(s) scheme dropped,
    /// parsed as a web address, then its host, port and path kept (the reasons a value is
    /// refused are `rules.json`'s).
    pub fn parse(raw: &str) -> Result<SiteUrl, SiteUrlError> {
        let why = &rules::rules().site_url_problems.reasons;
        let rest = without_scheme(checked_text(raw, why)?, why)?;
        let parsed = web_address(rest, why)?;
        let host = host_of(&parsed, rest, why)?;
        let mut site = host.clone();
        if let Some(port) = parsed.port() {
            if port == 0 {
                return Err(invalid(&why.port_zero));
            }
            site.push_str(&format!(":{port}"));
        }
        site.push_str(parsed.path().trim_end_matches('/'));
        Ok(SiteUrl { site, host })
    }

    /// `example.com/blog`: what /provision gets as `siteurl`.
    pub fn as_str(&self) -> &str {
        &self.site
    }

    /// The host name alone, for the DNS check.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The site with `/` as `::`, as the cancel and status paths want it.
    pub fn path_id(&self) -> String {
        self.site.replace('/', "::")
    }
}

impl fmt::Display for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.site)
    }
}

/// A refusal for `reason`.
fn invalid(reason: &str) -> SiteUrlError {
    SiteUrlError::Invalid(reason.to_owned())
}

/// The value trimmed, when it is not empty, not too long, and has no spaces or control
/// characters.
fn checked_text<'a>(raw: &'a str, why: &Reasons) -> Result<&'a str, SiteUrlError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(SiteUrlError::Empty);
    }
    let max = SiteUrl::max_len();
    if trimmed.len() > max {
        let reason = render(&why.too_long, &[("max", &max.to_string())]);
        return Err(SiteUrlError::Invalid(reason));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(&why.spaces));
    }
    Ok(trimmed)
}

/// The value after an `http://` or `https://` (in any case); any other scheme is refused.
fn without_scheme<'a>(trimmed: &'a str, why: &Reasons) -> Result<&'a str, SiteUrlError> {
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("https://") {
        Ok(&trimmed[8..])
    } else if lower.starts_with("http://") {
        Ok(&trimmed[7..])
    } else if trimmed.contains("://") || has_scheme_prefix(trimmed) {
        Err(invalid(&why.scheme))
    } else {
        Ok(trimmed)
    }
}

/// The value (without its scheme) parsed as an http URL with no user name, query or
/// fragment.
fn web_address(rest: &str, why: &Reasons) -> Result<url::Url, SiteUrlError> {
    let parsed = url::Url::parse(&format!("http://{rest}")).map_err(|e| {
        SiteUrlError::Invalid(match e {
            url::ParseError::EmptyHost => why.empty_host.clone(),
            url::ParseError::InvalidPort => why.bad_port.clone(),
            url::ParseError::IdnaError | url::ParseError::InvalidDomainCharacter => {
                why.bad_host.clone()
            }
            other => other.to_string(),
        })
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(&why.user_name));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(&why.query));
    }
    Ok(parsed)
}

/// The host as the partner API gets it: a domain name with a dot and valid labels, or a
/// public IPv4 address typed as a plain dotted quad (`rest` is the value as typed).
fn host_of(parsed: &url::Url, rest: &str, why: &Reasons) -> Result<String, SiteUrlError> {
    match parsed.host() {
        Some(url::Host::Domain(d)) if d.contains('.') => {
            if d.split('.').all(is_dns_label) {
                Ok(d.to_owned())
            } else {
                Err(invalid(&why.bad_label))
            }
        }
        Some(url::Host::Domain(_)) | None => Err(invalid(&why.no_domain)),
        Some(url::Host::Ipv4(ip)) => ipv4_host(ip, rest, why),
        Some(url::Host::Ipv6(_)) => Err(invalid(&why.ipv6)),
    }
}

/// An IPv4 host, as typed and reachable from the internet.
fn ipv4_host(ip: std::net::Ipv4Addr, rest: &str, why: &Reasons) -> Result<String, SiteUrlError> {
    // The URL parser rewrites shorthand forms (`1.2.3`, `0x7f.1`, `2130706433`) into another
    // address: only the plain dotted quad is taken at its word.
    let typed = rest.split(['/', ':']).next().unwrap_or("");
    let ip_text = ip.to_string();
    if typed != ip_text {
        let reason = render(&why.ipv4_shorthand, &[("ip", &ip_text)]);
        return Err(SiteUrlError::Invalid(reason));
    }
    if ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
    {
        let reason = render(&why.unreachable_ip, &[("ip", &ip_text)]);
        return Err(SiteUrlError::Invalid(reason));
    }
    Ok(ip_text)
}

/// One dot-separated part of a host name: 1-63 characters, not starting or ending with `-`.
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `javascript:alert(1)`, `mailto:x`, `ftp:...`: a scheme other than http(s) without `//`.
fn has_scheme_prefix(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphabetic())
                && !rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
#[path = "domain_tests.rs"]
mod tests;
