//! The Licensing API's state: the bearer tokens it accepts (each may or may not list licences
//! and attach them to sites, and may be disabled), the licences it issued, the product families
//! it sells, and how many calls of each kind it received. The routes are `licensing`; the
//! control endpoints `licence_control`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Value, json};

use super::state::SandboxState;

/// A Licensing API token the sandbox accepts, with what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceToken {
    /// The bearer token.
    pub token: String,
    /// It may call the partner portal's `GET /licenses` (other tokens get a 403).
    pub may_list: bool,
    /// Its partner is allowlisted to attach licences to sites (`POST /license/{key}/site`).
    pub may_attach: bool,
}

/// The default token that may list licences and attach them. Like every sandbox secret it
/// carries [`super::HOSTILE_TOKEN_PART`], so a client that masks only its raw form leaks it.
pub const LISTING_TOKEN: &str = "sbxlic_lister_/\"\\+%#&= é€_4b1d";

/// The default token that may neither list licences nor attach them.
pub const PLAIN_TOKEN: &str = "sbxlic_plain_/\"\\+%#&= é€_77e0";

impl LicenceToken {
    /// The two default tokens: [`LISTING_TOKEN`] and [`PLAIN_TOKEN`].
    pub fn defaults() -> Vec<LicenceToken> {
        vec![
            LicenceToken {
                token: LISTING_TOKEN.to_owned(),
                may_list: true,
                may_attach: true,
            },
            LicenceToken {
                token: PLAIN_TOKEN.to_owned(),
                may_list: false,
                may_attach: false,
            },
        ]
    }
}

/// One licence the sandbox issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedLicence {
    /// `license_id`, from 1.
    pub id: u64,
    /// `license_key`: the product slug, `_`, then 24 random letters and digits.
    pub key: String,
    /// The product slug.
    pub product: String,
    /// Which token issued it (its index in the configured list).
    pub token: usize,
    /// `issued_at`, `YYYY-MM-DD HH:MM:SS` UTC.
    pub issued_at: String,
    /// The site it is attached to (a site key), if any.
    pub site: Option<String>,
    /// `attached_at`, when attached.
    pub attached_at: Option<String>,
    /// `revoked_at`, once revoked.
    pub revoked_at: Option<String>,
}

impl IssuedLicence {
    /// The `License` object the API answers with.
    pub(crate) fn answer(&self) -> Value {
        json!({
            "license_id": self.id,
            "license_key": self.key,
            "issued_at": self.issued_at,
            "revoked_at": self.revoked_at,
            "attached_at": self.attached_at,
        })
    }

    /// An item of the portal's `GET /licenses`.
    pub(crate) fn item(&self, product_id: u64) -> Value {
        json!({
            "license_id": self.id,
            "license_key": self.key,
            "product": self.product,
            "product_id": product_id,
            "blog_id": self.site.as_ref().map(|_| self.id + 1000),
            "siteurl": self.site,
            "issued_at": self.issued_at,
            "attached_at": self.attached_at,
            "revoked_at": self.revoked_at,
        })
    }
}

/// Calls of each kind the Licensing API received (whatever their answer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LicenceCalls {
    /// `POST /license`.
    pub issue: u64,
    /// Issues that took effect (a licence was created).
    pub issue_ok: u64,
    /// `GET /license`.
    pub get: u64,
    /// `DELETE /license`.
    pub revoke: u64,
    /// `POST /license/{key}/site`.
    pub attach: u64,
    /// `DELETE /license/{key}/site`.
    pub detach: u64,
    /// `GET /licenses`.
    pub list: u64,
    /// `GET /product-families` and `GET /partner/product-families`.
    pub families: u64,
}

/// The Licensing API's part of the sandbox's data.
#[derive(Debug)]
pub(crate) struct Licensing {
    pub(crate) tokens: Vec<LicenceToken>,
    pub(crate) disabled: Vec<bool>,
    pub(crate) licences: Vec<IssuedLicence>,
    pub(crate) calls: LicenceCalls,
    pub(crate) families: Vec<Family>,
    pub(crate) rng: fastrand::Rng,
}

/// A product family: its name, slug and products (`product_id`, name, slug).
#[derive(Clone, Debug)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) slug: &'static str,
    pub(crate) products: Vec<(u64, &'static str, &'static str)>,
}

/// The families the sandbox sells (the Licensing API spec's products).
fn families() -> Vec<Family> {
    let family = |name, slug, products| Family {
        name,
        slug,
        products,
    };
    vec![
        family(
            "Jetpack VaultPress Backup",
            "jetpack-backup",
            vec![
                (
                    2100,
                    "Jetpack VaultPress Backup (daily)",
                    "jetpack-backup-daily",
                ),
                (
                    2102,
                    "Jetpack VaultPress Backup (real-time)",
                    "jetpack-backup-realtime",
                ),
            ],
        ),
        family(
            "Jetpack Security",
            "jetpack-security",
            vec![
                (2010, "Jetpack Security (daily)", "jetpack-security-daily"),
                (
                    2012,
                    "Jetpack Security (real-time)",
                    "jetpack-security-realtime",
                ),
            ],
        ),
        family(
            "Jetpack Scan",
            "jetpack-scan",
            vec![(2106, "Jetpack Scan", "jetpack-scan")],
        ),
        family(
            "Jetpack Anti-spam",
            "jetpack-anti-spam",
            vec![(2110, "Jetpack Akismet Anti-spam", "jetpack-anti-spam")],
        ),
        family(
            "Jetpack Complete",
            "jetpack-complete",
            vec![(2014, "Jetpack Complete", "jetpack-complete")],
        ),
    ]
}

impl Licensing {
    pub(crate) fn new(tokens: Vec<LicenceToken>) -> Licensing {
        Licensing {
            disabled: vec![false; tokens.len()],
            tokens,
            licences: Vec::new(),
            calls: LicenceCalls::default(),
            families: families(),
            rng: fastrand::Rng::new(),
        }
    }

    /// The index of an enabled token.
    pub(crate) fn token(&self, bearer: &str) -> Option<usize> {
        let i = self.tokens.iter().position(|t| t.token == bearer)?;
        (!self.disabled[i]).then_some(i)
    }

    /// The product id of a slug the sandbox sells.
    pub(crate) fn product_id(&self, slug: &str) -> Option<u64> {
        self.families
            .iter()
            .flat_map(|f| f.products.iter())
            .find(|(_, _, s)| *s == slug)
            .map(|(id, _, _)| *id)
    }

    /// Issues a licence for `product` to token `token`.
    pub(crate) fn issue(&mut self, token: usize, product: &str) -> IssuedLicence {
        let random: String = (0..24)
            .map(|_| {
                let c = self.rng.u8(0..36);
                char::from_digit(u32::from(c), 36).unwrap_or('0')
            })
            .collect();
        let licence = IssuedLicence {
            id: self.licences.len() as u64 + 1,
            key: format!("{product}_{random}"),
            product: product.to_owned(),
            token,
            issued_at: utc_text(SystemTime::now()),
            site: None,
            attached_at: None,
            revoked_at: None,
        };
        self.licences.push(licence.clone());
        self.calls.issue_ok += 1;
        licence
    }

    /// Token `token`'s licence with this key.
    pub(crate) fn find_mut(&mut self, token: usize, key: &str) -> Option<&mut IssuedLicence> {
        self.licences
            .iter_mut()
            .find(|l| l.token == token && l.key == key)
    }
}

impl SandboxState {
    /// Every licence issued so far, in order.
    pub fn licences(&self) -> Vec<IssuedLicence> {
        self.lock().licensing.licences.clone()
    }

    /// How many licences `token` was issued (revoked ones included): what it is billed for.
    pub fn licences_issued_to(&self, token: &str) -> usize {
        let data = self.lock();
        let index = data.licensing.tokens.iter().position(|t| t.token == token);
        data.licensing
            .licences
            .iter()
            .filter(|l| Some(l.token) == index)
            .count()
    }

    /// The calls the Licensing API received.
    pub fn licence_calls(&self) -> LicenceCalls {
        self.lock().licensing.calls.clone()
    }

    /// Revokes a licence behind the client's back (the partner portal, support). False when
    /// no licence has this key.
    pub fn revoke_licence(&self, key: &str) -> bool {
        let mut data = self.lock();
        let Some(licence) = data.licensing.licences.iter_mut().find(|l| l.key == key) else {
            return false;
        };
        if licence.revoked_at.is_none() {
            licence.revoked_at = Some(utc_text(SystemTime::now()));
            licence.site = None;
        }
        true
    }

    /// Disables (or enables again) a Licensing API token: while disabled every call with it
    /// gets a 403. False for a token the sandbox does not know.
    pub fn set_licence_token_enabled(&self, token: &str, enabled: bool) -> bool {
        let mut data = self.lock();
        let Some(i) = data.licensing.tokens.iter().position(|t| t.token == token) else {
            return false;
        };
        data.licensing.disabled[i] = !enabled;
        true
    }

    /// The licence tokens the sandbox accepts.
    pub fn licence_tokens(&self) -> Vec<LicenceToken> {
        self.lock().licensing.tokens.clone()
    }

    /// The licences issued per token index (for the control endpoint).
    pub(crate) fn licences_by_token(&self) -> BTreeMap<usize, usize> {
        let mut counts = BTreeMap::new();
        for l in &self.lock().licensing.licences {
            *counts.entry(l.token).or_insert(0) += 1;
        }
        counts
    }
}

/// `t` as the API writes times: `YYYY-MM-DD HH:MM:SS`, UTC.
pub(crate) fn utc_text(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_civil_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_000), (2022, 1, 8));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_599_581_698);
        assert_eq!(utc_text(t), "2020-09-08 16:14:58");
    }

    #[test]
    fn the_default_tokens_are_hostile() {
        for t in LicenceToken::defaults() {
            assert!(
                t.token.contains(super::super::HOSTILE_TOKEN_PART),
                "{}",
                t.token
            );
        }
    }
}
