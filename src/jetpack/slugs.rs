//! Reading a product slug from the status endpoint in every spelling the partner may use.
//! The partner documents the provision form's slugs (`premium`, `jetpack-backup-daily`) but not
//! how `GET …/status` spells `products[].slug`; WordPress.com's own product slugs are
//! `jetpack_premium`, `jetpack_business` (the plan WHMCS sells as Professional), each with a
//! `_monthly` variant, `jetpack_backup_daily` and so on. This is the one place that maps them
//! back to a plan of `rules.json`. A slug it cannot map is `None`: the caller treats a product
//! of ours it cannot name as "something of ours is there", never as "nothing there".

use crate::domain::ALLOWED_PLANS;

/// Billing-period and packaging suffixes that do not change which product a slug names.
const SUFFIXES: [&str; 7] = [
    "_monthly",
    "_yearly",
    "_annual",
    "_bi_yearly",
    "_biyearly",
    "_1y",
    "_2y",
];

/// Other names for the same product, after [`normalise`].
const ALIASES: [(&str, &str); 3] = [
    ("business", "professional"),
    ("antispam", "anti_spam"),
    ("akismet", "anti_spam"),
];

/// The plan of `rules.json` a status slug names, in any spelling: short names, WordPress.com
/// product slugs with or without `jetpack_`/`jetpack-`, monthly and yearly variants, hyphen or
/// underscore, case and spaces ignored, Professional = business. None: a slug no plan matches.
pub fn plan_of_slug(slug: &str) -> Option<&'static str> {
    let wanted = normalise(slug)?;
    ALLOWED_PLANS
        .iter()
        .copied()
        .find(|plan| normalise(plan).as_deref() == Some(wanted.as_str()))
}

/// One spelling for every variant: lower case, `_` for `-` and spaces, no `jetpack_` prefix, no
/// period suffix, aliases resolved. None for an empty slug.
fn normalise(slug: &str) -> Option<String> {
    let mut s: String = slug
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if let Some(rest) = s.strip_prefix("jetpack_") {
        s = rest.to_owned();
    }
    for suffix in SUFFIXES {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest.to_owned();
            break;
        }
    }
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == s) {
        s = (*to).to_owned();
    }
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_each_plan_maps_to_it() {
        let table = [
            ("premium", Some("premium")),
            ("jetpack_premium", Some("premium")),
            ("jetpack-premium", Some("premium")),
            ("jetpack_premium_monthly", Some("premium")),
            ("JETPACK_PREMIUM_YEARLY", Some("premium")),
            (" Premium ", Some("premium")),
            ("jetpack_business", Some("professional")),
            ("jetpack_business_monthly", Some("professional")),
            ("business", Some("professional")),
            ("professional", Some("professional")),
            ("jetpack_personal", Some("personal")),
            ("jetpack_free", Some("free")),
            ("jetpack-backup-daily", Some("jetpack-backup-daily")),
            ("jetpack_backup_daily", Some("jetpack-backup-daily")),
            ("jetpack_backup_daily_monthly", Some("jetpack-backup-daily")),
            ("backup-daily", Some("jetpack-backup-daily")),
            ("jetpack_backup_realtime", Some("jetpack-backup-realtime")),
            ("jetpack_scan", Some("jetpack-scan")),
            ("jetpack_scan_monthly", Some("jetpack-scan")),
            ("jetpack_anti_spam", Some("jetpack-anti-spam")),
            ("jetpack-anti-spam-monthly", Some("jetpack-anti-spam")),
            ("akismet", Some("jetpack-anti-spam")),
            // Bundles and unknown products name no single plan of ours.
            ("jetpack_security_daily", None),
            ("jetpack_complete", None),
            ("jetpack_premium_plus", None),
            ("jetpack", None),
            ("", None),
            ("   ", None),
        ];
        for (slug, want) in table {
            assert_eq!(plan_of_slug(slug), want, "{slug:?}");
        }
    }
}
