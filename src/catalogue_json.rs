//! The lists the PHP module and the dashboard share with the worker, exported from their one
//! source in Rust: the action catalogue (`catalogue`), the request kinds (`lifecycle`), the job
//! states and the requesters (`domain`), the settings' values (`order`, `manual_setup`), written to `whmcs/modules/servers/jetpack/catalogue.json`
//! beside `rules.json`. A test fails when the committed file differs from [`render`]; the PHP
//! tests check that every list the PHP side uses comes from the file.

use serde_json::{Value, json};

use crate::catalogue::{
    ACTIVATION_PATH, ActionSpec, Api, BUILT_IN_PRODUCTS, CATALOGUE, Checks, Effect,
    LICENCE_CATALOGUE, LicenceEffect, LicenceSpec, LicenceState, StatusChange,
};
use crate::domain::{JobState, RequestedBy};
use crate::lifecycle::RequestKind;
use crate::manual_setup::{ManualSetup, OrderEvent, SETTING};
use crate::order::OnSuspend;

/// Where the exported file lives, from the repository's root.
pub const PATH: &str = "whmcs/modules/servers/jetpack/catalogue.json";

/// The file's text (pretty JSON, one trailing newline).
pub fn render() -> String {
    let doc = json!({
        "about": "Generated from the worker's src/catalogue.rs (and lifecycle, domain, manual_setup) by its \
                  test catalogue_json; do not edit: run `JETPACK_WRITE_CATALOGUE=1 cargo test \
                  catalogue_json` after changing the catalogue. The PHP module and the dashboard \
                  read every list of actions, request kinds, job states and requesters here.",
        "actions": CATALOGUE.iter().map(action)
            .chain(LICENCE_CATALOGUE.iter().map(licence_action)).collect::<Vec<_>>(),
        "request_kinds": RequestKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "job_states": JobState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "unfinished_states": JobState::ALL.iter().filter(|s| !s.is_finished())
            .map(|s| s.as_str()).collect::<Vec<_>>(),
        "requesters": RequestedBy::ALL.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        "suspend_setting_cancel": OnSuspend::CANCEL,
        "api_settings": Api::ALL.iter().map(|a| (a.as_str().to_owned(), json!(a.as_str())))
            .collect::<serde_json::Map<_, _>>(),
        "licence_products": BUILT_IN_PRODUCTS.iter()
            .map(|(slug, name)| json!({"slug": slug, "name": name})).collect::<Vec<_>>(),
        "licence_activation_path": ACTIVATION_PATH,
        "licence_states": LicenceState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "licence_live_states": LicenceState::ALL.iter().filter(|s| s.is_live())
            .map(|s| s.as_str()).collect::<Vec<_>>(),
        "manual_setup": manual_setup(),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The setting *When to provision a manual-setup order*: its module setting, its choices
/// (stored value and words, the default first) and, per order event, the stored values (`''`
/// included) whose targets that event lets the hooks provision.
fn manual_setup() -> Value {
    let choices: Vec<Value> = ManualSetup::ALL
        .iter()
        .map(|m| json!({"value": m.as_str(), "label": m.label()}))
        .collect();
    let mut provisioned_on = serde_json::Map::new();
    for event in OrderEvent::ALL {
        provisioned_on.insert(
            event.as_str().to_owned(),
            json!(ManualSetup::stored_for(event)),
        );
    }
    json!({
        "setting": SETTING,
        "choices": choices,
        "provisioned_on": provisioned_on,
    })
}

fn action(a: &ActionSpec) -> Value {
    json!({
        "api": Api::Plan.as_str(),
        "job_action": a.name,
        "name": a.name,
        "whmcs_function": a.whmcs_function,
        "module_log": a.module_log,
        "verb": a.verb,
        "queued_text": a.queued_text,
        "effect": effect(a.effect),
        "reads_ledger": a.reads_ledger,
        "checks": checks(a.checks),
        "on_success": a.on_success.map(StatusChange::status),
        "on_failure": a.on_failure.map(StatusChange::status),
    })
}

fn licence_action(a: &LicenceSpec) -> Value {
    json!({
        "api": Api::Licence.as_str(),
        "job_action": a.job_action.as_str(),
        "name": a.name,
        "whmcs_function": a.whmcs_function,
        "module_log": a.module_log,
        "verb": a.verb,
        "queued_text": a.queued_text,
        "effect": licence_effect(a.effect),
        "reads_ledger": true,
        "checks": checks(a.checks),
        "on_success": a.on_success.map(StatusChange::status),
        "on_failure": a.on_failure.map(StatusChange::status),
    })
}

fn licence_effect(e: LicenceEffect) -> &'static str {
    match e {
        LicenceEffect::Issues => "issues",
        LicenceEffect::Revokes => "revokes",
        LicenceEffect::IssuesThenRevokes => "issues_then_revokes",
        LicenceEffect::DetachesBySetting => "detaches_by_setting",
        LicenceEffect::AttachesBySetting => "attaches_by_setting",
    }
}

fn effect(e: Effect) -> &'static str {
    match e {
        Effect::Provides => "provides",
        Effect::Removes => "removes",
        Effect::RemovesBySetting => "removes_by_setting",
        Effect::RestoresBySetting => "restores_by_setting",
    }
}

fn checks(c: Checks) -> &'static str {
    match c {
        Checks::Order => "order",
        Checks::Cancel => "cancel",
        Checks::Target => "target",
        Checks::Licence => "licence",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed file is what the catalogue says (JETPACK_WRITE_CATALOGUE=1 rewrites it).
    #[test]
    fn catalogue_json_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
        let want = render();
        if std::env::var_os("JETPACK_WRITE_CATALOGUE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{PATH} differs from src/catalogue.rs: run `JETPACK_WRITE_CATALOGUE=1 cargo test \
             catalogue_json` and commit the file"
        );
        let doc: Value = serde_json::from_str(&have).unwrap();
        assert_eq!(
            doc["actions"].as_array().unwrap().len(),
            CATALOGUE.len() + LICENCE_CATALOGUE.len()
        );
        assert_eq!(doc["api_settings"]["licence"], "licence");
        assert_eq!(doc["request_kinds"][2], "retry");
    }
}
