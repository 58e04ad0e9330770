//! Unit tests of `order` (kept out of `order.rs` for length): friendly field names, duplicate
//! value rows, the missing details row, and a message that names what to fix for every bad input.

use super::*;
use crate::domain::{AddonId, ServiceId};

fn service() -> ServiceRow {
    ServiceRow {
        target: Target::Service(ServiceId(7)),
        client_id: 3,
        product_id: 2,
        status: "Pending".into(),
        product: Some(ProductRow {
            name: "Jetpack Premium".into(),
            server_type: "jetpack".into(),
            partner_client_id: " id ".into(),
            partner_client_secret: "secret".into(),
            ..ProductRow::default()
        }),
        parent_domain: None,
    }
}

fn field(id: u32, name: &str, value_id: Option<u32>, value: Option<&str>) -> FieldRow {
    FieldRow {
        field_id: id,
        field_name: name.into(),
        value_id,
        value: value.map(str::to_owned),
    }
}

fn fields() -> Vec<FieldRow> {
    vec![
        field(
            1,
            "Site URL|Your site",
            Some(10),
            Some("https://Example.com/|ignored"),
        ),
        field(2, "Local User", Some(11), Some(" admin ")),
        field(3, "Plan|Plan", Some(12), Some("Premium")),
        field(
            4,
            "jetpack_provisioning_details|Details",
            Some(14),
            Some(""),
        ),
        field(
            4,
            "jetpack_provisioning_details|Details",
            Some(13),
            Some(""),
        ),
    ]
}

#[test]
fn reads_friendly_names_cut_values_and_lowest_duplicate() {
    let o = read_order(&service(), &fields()).unwrap();
    assert_eq!(o.site.as_str(), "example.com");
    assert_eq!(o.local_user, "admin");
    assert_eq!(o.plan.as_str(), "premium");
    assert_eq!(o.credentials.client_id, "id");
    assert_eq!(
        o.details,
        DetailsField {
            field_id: 4,
            value_id: Some(13)
        }
    );
}

#[test]
fn missing_details_value_row_is_inserted_later() {
    let mut f = fields();
    f.retain(|r| r.field_id != 4);
    f.push(field(4, "jetpack_provisioning_details", None, None));
    let o = read_order(&service(), &f).unwrap();
    assert_eq!(o.details.value_id, None);
}

#[test]
fn every_bad_input_names_what_to_fix() {
    type Mutation = Box<dyn Fn(&mut ServiceRow, &mut Vec<FieldRow>)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|_, f| f.retain(|r| r.field_id != 1)),
            "no custom field named 'Site URL'",
        ),
        (
            Box::new(|_, f| f[0].field_name = "Site Url".into()),
            "no custom field named 'Site URL'",
        ),
        (
            Box::new(|_, f| f.push(field(9, "Site URL", None, None))),
            "2 custom fields named 'Site URL'",
        ),
        (
            Box::new(|_, f| f[0].value = Some("  ".into())),
            "Site URL '  ' is empty",
        ),
        (
            Box::new(|_, f| f[0].value_id = None),
            "Site URL '' is empty",
        ),
        (
            Box::new(|_, f| f[1].value = Some("".into())),
            "Local User is empty",
        ),
        (
            Box::new(|_, f| f[2].value = Some("Gold".into())),
            "'Gold' is not an allowed plan",
        ),
        (
            Box::new(|s, _| s.product.as_mut().unwrap().partner_client_secret = " ".into()),
            "credentials",
        ),
        (Box::new(|s, _| s.product = None), "no longer exists"),
        (
            Box::new(|s, _| s.product.as_mut().unwrap().server_type = "cpanel".into()),
            "does not use the jetpack module",
        ),
        (
            Box::new(|_, f| f.retain(|r| r.field_id != 4)),
            "jetpack_provisioning_details",
        ),
    ];
    for (mutate, expect) in cases {
        let (mut s, mut f) = (service(), fields());
        mutate(&mut s, &mut f);
        let err = read_order(&s, &f).unwrap_err();
        assert!(
            err.message.starts_with("JETPACK MODULE: Service ID: 7 - "),
            "{}",
            err.message
        );
        assert!(
            err.message.contains(expect),
            "{} should contain {expect}",
            err.message
        );
    }
}

#[test]
fn quoted_values_carry_no_markup() {
    assert_eq!(quote("<b>x</b>"), "''b'x'/b''");
    assert!(quote(&"a".repeat(200)).ends_with("…'"));
}

#[test]
fn messages_are_the_rules_files_texts_filled_in() {
    let fail = |mutate: &dyn Fn(&mut ServiceRow, &mut Vec<FieldRow>)| {
        let (mut s, mut f) = (service(), fields());
        mutate(&mut s, &mut f);
        let message = read_order(&s, &f).unwrap_err().message;
        message
            .strip_prefix("JETPACK MODULE: Service ID: 7 - ")
            .unwrap_or(&message)
            .to_owned()
    };
    assert_eq!(
        fail(&|_, f| f[1].value = Some("<b>admin</b>".into())),
        "the Local User contains angle brackets, which WordPress user names cannot; enter the exact user name"
    );
    assert_eq!(
        fail(&|_, f| f[1].value = Some("ü".repeat(201))),
        "the Local User is longer than 200 characters"
    );
    assert_eq!(
        fail(&|_, f| f[2].value = Some(" Gold ".into())),
        "'Gold' is not an allowed plan; use one of: free, personal, premium, professional, \
         jetpack-backup-realtime, jetpack-backup-daily, jetpack-scan, jetpack-anti-spam"
    );
    assert_eq!(
        fail(&|_, f| f[0].value = Some("a b.example".into())),
        "the Site URL 'a b.example' is not a web address (contains spaces); enter the WordPress \
         site's address (like example.com) and retry"
    );
    assert_eq!(
        fail(&|s, _| s.product.as_mut().unwrap().server_type = "cpanel".into()),
        "product 'Jetpack Premium' does not use the jetpack module (its module is 'cpanel'); \
         set Module Settings → Module Name to \"Jetpack by Automattic\""
    );
    assert_eq!(
        fail(&|s, _| s.product = None),
        "its product (id 2) no longer exists; assign the service to a Jetpack product"
    );
    assert_eq!(
        fail(&|_, f| f.push(field(9, "Plan", None, None))),
        "product 'Jetpack Premium' has 2 custom fields named 'Plan'; delete all but one"
    );
    assert_eq!(
        SiteUrl::parse(&"a".repeat(772)).unwrap_err().to_string(),
        "is not a web address (longer than 771 characters)"
    );
    assert_eq!(SiteUrl::max_len(), 771);
}

#[test]
fn quotes_are_cut_at_the_rules_limit() {
    assert_eq!(quote(&"a".repeat(80)), format!("'{}'", "a".repeat(80)));
    assert_eq!(quote(&"a".repeat(81)), format!("'{}…'", "a".repeat(80)));
}

fn addon() -> ServiceRow {
    ServiceRow {
        target: Target::Addon {
            addon: AddonId(5),
            service: ServiceId(7),
        },
        parent_domain: Some("Parent.Example".into()),
        product: Some(ProductRow {
            name: "Jetpack Backup".into(),
            ..service().product.unwrap()
        }),
        ..service()
    }
}

/// An addon's fields: the details field only (the usual addon setup).
fn addon_fields() -> Vec<FieldRow> {
    vec![field(
        21,
        "jetpack_provisioning_details",
        Some(30),
        Some(""),
    )]
}

fn with_settings(mut s: ServiceRow, plan: &str, user: &str) -> ServiceRow {
    if let Some(p) = s.product.as_mut() {
        p.plan_setting = plan.into();
        p.default_local_user = user.into();
    }
    s
}

#[test]
fn an_addon_defaults_to_its_services_domain_and_the_module_settings() {
    let s = with_settings(addon(), "personal", "wpadmin");
    let o = read_order(&s, &addon_fields()).unwrap();
    assert_eq!(o.site.as_str(), "parent.example");
    assert_eq!(o.local_user, "wpadmin");
    assert_eq!(o.plan.as_str(), "personal");
    assert_eq!(o.details.field_id, 21);
    // Its own Site URL field wins when it holds a value; an empty one falls back.
    let mut f = addon_fields();
    f.push(field(22, "Site URL", Some(31), Some("blog.example.org")));
    assert_eq!(
        read_order(&s, &f).unwrap().site.as_str(),
        "blog.example.org"
    );
    f[1].value = Some(" ".into());
    assert_eq!(read_order(&s, &f).unwrap().site.as_str(), "parent.example");
    let c = read_cancel(&s, &addon_fields()).unwrap();
    assert_eq!(c.site.as_str(), "parent.example");
    assert_eq!(
        c.plan.map(|p| p.as_str().to_owned()).as_deref(),
        Some("personal")
    );
}

#[test]
fn the_module_setting_wins_over_the_plan_field() {
    let s = with_settings(service(), "personal", "");
    assert_eq!(read_order(&s, &fields()).unwrap().plan.as_str(), "personal");
    assert_eq!(
        read_order(&service(), &fields()).unwrap().plan.as_str(),
        "premium"
    );
    let mut f = fields();
    f[2].value = Some("Gold".into());
    assert_eq!(read_order(&s, &f).unwrap().plan.as_str(), "personal");
    f.retain(|r| r.field_id != 3);
    assert_eq!(read_order(&s, &f).unwrap().plan.as_str(), "personal");
    // No field and no setting: the field's message, as before the setting existed.
    let err = read_order(&service(), &f).unwrap_err().message;
    assert!(err.contains("no custom field named 'Plan'"), "{err}");
    // A setting that is not a plan is refused like a bad field value.
    let err = read_order(&with_settings(service(), "gold", ""), &f)
        .unwrap_err()
        .message;
    assert!(err.contains("'gold' is not an allowed plan"), "{err}");
}

#[test]
fn a_missing_local_user_takes_the_module_settings_default() {
    let mut f = fields();
    f.retain(|r| r.field_id != 2);
    let err = read_order(&service(), &f).unwrap_err().message;
    assert!(err.contains("no custom field named 'Local User'"), "{err}");
    let s = with_settings(service(), "", " editor ");
    assert_eq!(read_order(&s, &f).unwrap().local_user, "editor");
    let err = read_order(&addon(), &addon_fields()).unwrap_err().message;
    assert_eq!(
        err,
        "JETPACK MODULE: Addon ID: 5 (Service ID: 7) - addon 'Jetpack Backup' has no custom field \
         named 'Local User'; add it under Products/Services → Product Addons → 'Jetpack Backup' → \
         Custom Fields with exactly that name (or 'Local User|Display Name')"
    );
}

#[test]
fn every_bad_addon_input_names_what_to_fix() {
    type Mutation = Box<dyn Fn(&mut ServiceRow, &mut Vec<FieldRow>)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|s, _| s.parent_domain = None),
            "its hosting service (id 7) does not exist in tblhosting",
        ),
        (
            Box::new(|s, _| s.parent_domain = Some(" ".into())),
            "the addon has no Site URL and its service (id 7) has no domain",
        ),
        (
            Box::new(|s, _| s.product = None),
            "its addon (id 2) no longer exists under Products/Services → Product Addons",
        ),
        (
            Box::new(|s, _| s.product.as_mut().unwrap().server_type = "".into()),
            "addon 'Jetpack Backup' does not use the jetpack module (its module is '')",
        ),
        (
            Box::new(|s, _| {
                let p = s.product.as_mut().unwrap();
                p.partner_client_id = String::new();
                p.partner_client_secret = String::new();
            }),
            "addon 'Jetpack Backup' needs the Jetpack Partner Client ID and Client Secret in its \
             Module Settings",
        ),
        (
            Box::new(|_, f| f.clear()),
            "addon 'Jetpack Backup' has no custom field named 'jetpack_provisioning_details'",
        ),
        (
            Box::new(|_, f| f.push(field(23, "Site URL", None, None))),
            "",
        ),
        (
            Box::new(|_, f| {
                f.push(field(23, "Site URL", None, None));
                f.push(field(24, "Site URL|Site", None, None));
            }),
            "addon 'Jetpack Backup' has 2 custom fields named 'Site URL'; delete all but one",
        ),
    ];
    for (mutate, expect) in cases {
        let (mut s, mut f) = (with_settings(addon(), "premium", "admin"), addon_fields());
        mutate(&mut s, &mut f);
        let message = match read_order(&s, &f) {
            Ok(_) if expect.is_empty() => continue,
            Ok(o) => panic!("{expect}: read {o:?}"),
            Err(e) => e.message,
        };
        assert!(
            message.starts_with("JETPACK MODULE: Addon ID: 5 (Service ID: 7) - "),
            "{message}"
        );
        assert!(
            message.contains(expect),
            "{message} should contain {expect}"
        );
    }
}

/// After a product move the Site URL field is there but empty: a change of plan takes the
/// site the ledger holds when it holds exactly one, a terminate any one; an order whose field
/// says a site, an addon, or a field that is missing entirely never falls back.
#[test]
fn an_empty_site_url_falls_back_to_the_site_the_ledger_holds() {
    let mut empty = fields();
    empty[0].value = Some(" ".into());
    let o = read_order_held(&service(), &empty, &["held.example"]).unwrap();
    assert_eq!(
        (o.site.as_str(), o.site_from_ledger),
        ("held.example", true)
    );
    assert!(read_order_held(&service(), &empty, &["a.example", "b.example"]).is_err());
    assert!(read_order_held(&service(), &empty, &[]).is_err());
    let c = read_cancel_held(&service(), &empty, &["a.example", "b.example"]).unwrap();
    assert_eq!((c.site.as_str(), c.site_from_ledger), ("a.example", true));

    let o = read_order_held(&service(), &fields(), &["held.example"]).unwrap();
    assert_eq!(
        (o.site.as_str(), o.site_from_ledger),
        ("example.com", false)
    );
    let mut missing = fields();
    missing.retain(|f| f.field_id != 1);
    assert!(read_cancel_held(&service(), &missing, &["held.example"]).is_err());
}
