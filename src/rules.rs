//! The order rules shared with the PHP module: `whmcs/modules/servers/jetpack/rules.json`
//! (module and field names, allowed plans, limits, and the texts of every message about bad
//! input), embedded at build time. The module and field names are read at compile time, so
//! they stay constants other code can `match` on; the rest is parsed once, on first use.
//! [`render`] fills a template's `{name}` placeholders the way the PHP module's `strtr` does.

use std::sync::LazyLock;

use serde::Deserialize;

/// The rules file as shipped with the PHP module.
pub const RULES_JSON: &str = include_str!("../whmcs/modules/servers/jetpack/rules.json");

/// The module name (`tblproducts.servertype`).
pub const MODULE_NAME: &str = string_value(RULES_JSON, "module");
/// The Site URL custom field's key.
pub const FIELD_SITE_URL: &str = string_value(RULES_JSON, "site_url");
/// The Local User custom field's key.
pub const FIELD_LOCAL_USER: &str = string_value(RULES_JSON, "local_user");
/// The Plan custom field's key.
pub const FIELD_PLAN: &str = string_value(RULES_JSON, "plan");
/// The key of the custom field the outcome is written to.
pub const FIELD_DETAILS: &str = string_value(RULES_JSON, "details");

/// Everything in `rules.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// What the file is (for people reading it).
    pub about: String,
    /// The module name ([`MODULE_NAME`]).
    pub module: String,
    /// The custom field keys.
    pub fields: Fields,
    /// The plans and products the partner API provisions, in the order messages list them.
    pub plans: Vec<PlanRule>,
    /// Length limits.
    pub limits: Limits,
    /// Message templates (the text after `JETPACK MODULE: Service ID: N - `).
    pub messages: Messages,
    /// What is said about an unusable Site URL.
    pub site_url_problems: SiteUrlProblems,
}

/// The custom field keys (the part of `fieldname` before the first `|`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// `Site URL`
    pub site_url: String,
    /// `Local User`
    pub local_user: String,
    /// `Plan`
    pub plan: String,
    /// `jetpack_provisioning_details`
    pub details: String,
}

/// One allowed plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRule {
    /// The lower-case slug sent to the API.
    pub slug: String,
    /// A standalone product (backups, scan, anti-spam), which must be named when cancelling.
    pub standalone: bool,
}

/// Length limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest Site URL, in bytes after trimming: host (253), colon, port (5), path (512).
    pub site_url_max_len: usize,
    /// Longest Local User, in characters.
    pub local_user_max_chars: usize,
    /// Longest value quoted in a message, in characters (longer ones end in `…`).
    pub quote_max_chars: usize,
}

/// Message templates; placeholders: `{product}`, `{value}` (quoted values), `{field}`,
/// `{module}`, `{product_id}`, `{count}`, `{problem}`, `{max}`, `{plans}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// The service row is gone.
    pub service_missing: String,
    /// The service's product is gone.
    pub product_missing: String,
    /// The product uses another module.
    pub wrong_module: String,
    /// No custom field with this key.
    pub no_field: String,
    /// Several custom fields with this key.
    pub many_fields: String,
    /// The Site URL is unusable (`{problem}`: a Site URL problem).
    pub bad_site_url: String,
    /// The Local User is empty.
    pub local_user_empty: String,
    /// The Local User has `<` or `>`.
    pub local_user_markup: String,
    /// The Local User is too long.
    pub local_user_too_long: String,
    /// The plan is not an allowed one.
    pub bad_plan: String,
    /// The partner client id or secret is missing.
    pub no_credentials: String,
    /// The addon row (tblhostingaddons) is gone.
    pub addon_missing: String,
    /// The addon's catalogue row (tbladdons) is gone.
    pub addon_definition_missing: String,
    /// The addon uses another module.
    pub addon_wrong_module: String,
    /// The addon has no custom field with this key.
    pub addon_no_field: String,
    /// The addon has several custom fields with this key.
    pub addon_many_fields: String,
    /// The addon's partner client id or secret is missing.
    pub addon_no_credentials: String,
    /// The addon's parent service is gone.
    pub addon_no_parent: String,
    /// The addon has no Site URL and its service no domain.
    pub addon_no_site: String,
    /// A change of plan to a lower plan, which the partner API refuses.
    pub downgrade: String,
    /// A licence product without a Licensing API token.
    pub licence_no_token: String,
    /// A licence product whose licence product slug is empty or malformed (`{value}`).
    pub licence_no_product: String,
    /// A licence addon without a Licensing API token.
    pub addon_licence_no_token: String,
    /// A licence addon whose licence product slug is empty or malformed (`{value}`).
    pub addon_licence_no_product: String,
}

/// What is said about an unusable Site URL, after "the Site URL 'value'".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteUrlProblems {
    /// Empty or only spaces.
    pub empty: String,
    /// Anything else: `{reason}` is one of the reasons.
    pub invalid: String,
    /// Why it is not a web address.
    pub reasons: Reasons,
}

/// Why a Site URL is not a web address. The PHP module checks those it can without a URL
/// parser; the IPv4 and IPv6 ones (and punycode) only the worker decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reasons {
    /// Longer than `{max}` bytes.
    pub too_long: String,
    /// White space or control characters.
    pub spaces: String,
    /// Not UTF-8 (only the PHP module can see such bytes).
    pub not_utf8: String,
    /// A scheme other than http(s).
    pub scheme: String,
    /// Nothing where the host should be.
    pub empty_host: String,
    /// A character no host name can have, or an international name that does not convert.
    pub bad_host: String,
    /// Not a number from 0 to 65535.
    pub bad_port: String,
    /// `user@` or `user:password@`.
    pub user_name: String,
    /// A query or fragment.
    pub query: String,
    /// A host without a dot.
    pub no_domain: String,
    /// A host label with other characters than letters, digits and `-`, or empty.
    pub bad_label: String,
    /// `:0`.
    pub port_zero: String,
    /// An IPv4 shorthand the URL parser reads as another address (`{ip}`).
    pub ipv4_shorthand: String,
    /// A loopback, private, link-local... address (`{ip}`).
    pub unreachable_ip: String,
    /// An IPv6 literal.
    pub ipv6: String,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| match serde_json::from_str(RULES_JSON) {
    Ok(rules) => rules,
    // The file is part of the build and the unit tests parse it: this cannot happen in a
    // binary whose tests passed.
    Err(e) => panic!("whmcs/modules/servers/jetpack/rules.json (embedded) is broken: {e}"),
});

/// The rules, parsed on first use.
pub fn rules() -> &'static Rules {
    &RULES
}

/// The allowed plan slugs, in the file's order.
pub fn plan_slugs() -> impl Iterator<Item = &'static str> {
    rules().plans.iter().map(|p| p.slug.as_str())
}

/// Fills `{name}` placeholders from `vars` in one pass (a value is never scanned again);
/// unknown placeholders are left as they are.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let value = after.find('}').and_then(|close| {
            let name = &after[1..close];
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close + 1))
        });
        match value {
            Some((v, used)) => {
                out.push_str(v);
                rest = &after[used..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The string value of the first `"key": "value"` pair in `json`, at compile time: a
/// missing key, or a value with escapes, fails the build.
const fn string_value(json: &'static str, key: &str) -> &'static str {
    let b = json.as_bytes();
    let k = key.as_bytes();
    let mut i = 0;
    while i + k.len() + 2 <= b.len() {
        if b[i] == b'"' && bytes_at(b, i + 1, k) && b[i + 1 + k.len()] == b'"' {
            let mut j = skip_space(b, i + k.len() + 2);
            if j < b.len() && b[j] == b':' {
                j = skip_space(b, j + 1);
                if j < b.len() && b[j] == b'"' {
                    let start = j + 1;
                    let mut end = start;
                    while end < b.len() && b[end] != b'"' {
                        if b[end] == b'\\' {
                            panic!(
                                "rules.json: a name the worker reads at compile time has an escape"
                            );
                        }
                        end += 1;
                    }
                    let (_, tail) = b.split_at(start);
                    let (value, _) = tail.split_at(end - start);
                    match std::str::from_utf8(value) {
                        Ok(s) => return s,
                        Err(_) => panic!("rules.json is not UTF-8"),
                    }
                }
            }
        }
        i += 1;
    }
    panic!("rules.json lacks a name the worker needs (module or a field key)");
}

/// Whether `b[at..]` starts with `k`.
const fn bytes_at(b: &[u8], at: usize, k: &[u8]) -> bool {
    if at + k.len() > b.len() {
        return false;
    }
    let mut n = 0;
    while n < k.len() {
        if b[at + n] != k[n] {
            return false;
        }
        n += 1;
    }
    true
}

/// The first index at or after `at` that is not JSON white space.
const fn skip_space(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_parses_and_the_compile_time_names_match_it() {
        let r = rules();
        assert_eq!(MODULE_NAME, r.module);
        assert_eq!(FIELD_SITE_URL, r.fields.site_url);
        assert_eq!(FIELD_LOCAL_USER, r.fields.local_user);
        assert_eq!(FIELD_PLAN, r.fields.plan);
        assert_eq!(FIELD_DETAILS, r.fields.details);
        assert_eq!(
            [
                MODULE_NAME,
                FIELD_SITE_URL,
                FIELD_LOCAL_USER,
                FIELD_PLAN,
                FIELD_DETAILS
            ],
            [
                "jetpack",
                "Site URL",
                "Local User",
                "Plan",
                "jetpack_provisioning_details"
            ]
        );
        assert!(plan_slugs().all(|s| s == s.to_ascii_lowercase() && !s.trim().is_empty()));
        assert_eq!(r.limits.site_url_max_len, 253 + 1 + 5 + 512);
    }

    #[test]
    fn render_fills_placeholders_once() {
        assert_eq!(
            render(
                "{value} is not {x}; use {plans} {",
                &[("value", "'{plans}'"), ("plans", "a, b")]
            ),
            "'{plans}' is not {x}; use a, b {"
        );
        assert_eq!(render("no placeholders", &[]), "no placeholders");
        assert_eq!(render("{a}{a}", &[("a", "é")]), "éé");
    }
}
