//! Tests of cancel, status and the `/_sandbox` control endpoints over real HTTP on loopback.

use serde_json::json;

use super::tests::{provision, send_json, start, token};
use super::*;

#[tokio::test]
async fn cancel_and_status() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let cancel = |site: &str| {
        client
            .post(format!("{base}/rest/v1.3/jpphp/{site}/partner-cancel"))
            .bearer_auth(&token)
            .form(&[("plan", "premium")])
    };
    let status_of = |site: &str| {
        client
            .get(format!("{base}/rest/v1.4/jpphp/{site}/status"))
            .bearer_auth(&token)
    };

    provision(
        &client,
        &base,
        &token,
        "premium",
        "example.com/blog",
        "admin",
    )
    .await;
    let (status, body) = send_json(status_of("example.com::blog")).await;
    assert_eq!(status, 200);
    assert_eq!(body["blog"]["is_connected"], true);
    assert_eq!(body["blog"]["has_backups_credentials"], false);
    assert_eq!(body["products"][0]["slug"], "jetpack_premium");
    assert_eq!(
        body["products"][0]["is_provisioned_by_calling_partner"],
        true
    );

    let (status, body) = send_json(cancel("example.com::blog")).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (status, body) = send_json(cancel("example.com::blog")).await;
    assert_eq!((status, body), (200, json!({"success": false})));
    let (status, body) = send_json(status_of("example.com::blog")).await;
    assert_eq!(status, 200);
    assert_eq!(body["blog"]["is_connected"], false);
    assert_eq!(body["products"], json!([]));

    let (status, body) = send_json(cancel("gone.invalid")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_blog"))
    );

    assert_eq!(
        state.calls("example.com/blog"),
        SiteCalls {
            provision: 1,
            provision_ok: 1,
            cancel: 2,
            cancel_ok: 1,
            status: 2
        }
    );
    assert_eq!(state.calls("gone.invalid").cancel, 1);
    assert_eq!(state.all_calls().len(), 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn control_endpoints() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    provision(&client, &base, &token, "premium", "example.com", "admin").await;

    let (status, body) = send_json(client.get(format!("{base}/_sandbox/calls"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_calls"], 1);
    assert_eq!(body["sites"]["example.com"]["provision_ok"], 1);
    let (_, body) = send_json(client.get(format!("{base}/_sandbox/plans"))).await;
    assert_eq!(
        body,
        json!({"example.com": {"slug": "premium", "pending": false, "ours": true}})
    );

    send_json(client.post(format!("{base}/_sandbox/unresolve?host=Late.example.com"))).await;
    assert!(!state.is_resolvable("late.example.com"));
    send_json(client.post(format!("{base}/_sandbox/resolve?host=late.example.com"))).await;
    assert!(state.is_resolvable("late.example.com"));

    let config = client
        .post(format!("{base}/_sandbox/config"))
        .json(&json!({"latency_ms": 250, "fault_rate": 0.0}));
    let (status, body) = send_json(config).await;
    assert_eq!((status, body["latency_ms"].as_u64()), (200, Some(250)));
    let started = std::time::Instant::now();
    let (status, _) = send_json(
        client
            .get(format!("{base}/rest/v1.4/jpphp/example.com/status"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));

    send_json(client.post(format!("{base}/_sandbox/revoke-tokens"))).await;
    let (status, _) = send_json(
        client
            .get(format!("{base}/rest/v1.4/jpphp/example.com/status"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 401);
    sandbox.shutdown().await;
}

/// `GET .../status` for `site`: the status code and the `(slug, by calling partner,
/// pending)` of every product.
async fn products_of(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    site: &str,
) -> Vec<(String, bool, bool)> {
    let request = client
        .get(format!("{base}/rest/v1.4/jpphp/{site}/status"))
        .bearer_auth(token);
    let (status, body) = send_json(request).await;
    assert_eq!(status, 200, "{body}");
    body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["slug"].as_str().unwrap().to_owned(),
                p["is_provisioned_by_calling_partner"].as_bool().unwrap(),
                p["is_pending"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn slugs(products: &[(String, bool, bool)]) -> Vec<&str> {
    products.iter().map(|p| p.0.as_str()).collect()
}

/// `POST .../partner-cancel` for `site` with `form`: the `success` answered.
async fn cancel_with(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    site: &str,
    form: &[(&str, &str)],
) -> bool {
    let request = client
        .post(format!("{base}/rest/v1.3/jpphp/{site}/partner-cancel"))
        .bearer_auth(token)
        .form(form);
    let (status, body) = send_json(request).await;
    assert_eq!(status, 200, "{body}");
    body["success"].as_bool().unwrap()
}

#[tokio::test]
async fn status_answers_in_the_configured_spelling() {
    let sandbox = start(SandboxConfig {
        spelling: Spelling::Short,
        ..SandboxConfig::default()
    })
    .await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    for plan in ["professional", "jetpack-backup-daily"] {
        provision(&client, &base, &token, plan, "example.com", "admin").await;
    }
    let seen = products_of(&client, &base, &token, "example.com").await;
    assert_eq!(slugs(&seen), ["professional", "jetpack-backup-daily"]);
    state.set_spelling(Spelling::Hyphenated);
    let seen = products_of(&client, &base, &token, "example.com").await;
    assert_eq!(slugs(&seen), ["jetpack-business", "jetpack-backup-daily"]);

    for (name, expected) in [
        ("wpcom", ["jetpack_business", "jetpack_backup_daily"]),
        (
            "wpcom_monthly",
            ["jetpack_business_monthly", "jetpack_backup_daily_monthly"],
        ),
    ] {
        let config = client
            .post(format!("{base}/_sandbox/config"))
            .json(&json!({"spelling": name}));
        let (status, body) = send_json(config).await;
        assert_eq!((status, body["spelling"].as_str()), (200, Some(name)));
        let seen = products_of(&client, &base, &token, "example.com").await;
        assert_eq!(slugs(&seen), expected);
    }
    let config = client
        .post(format!("{base}/_sandbox/config"))
        .json(&json!({"spelling": "jetpack"}));
    assert_eq!(send_json(config).await.0, 400);
    assert_eq!(state.spelling(), Spelling::WpcomMonthly);
    // The recorded products keep the form's spelling.
    assert_eq!(state.plan("example.com").unwrap().slug, "professional");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_family_plan_and_products_coexist_and_cancel_targets_one() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let site = "example.com";
    for plan in [
        "personal",
        "jetpack-backup-daily",
        "jetpack-scan",
        "premium",
    ] {
        let (status, _) = provision(&client, &base, &token, plan, site, "admin").await;
        assert_eq!(status, 200, "{plan}");
    }
    let (status, body) = provision(&client, &base, &token, "personal", site, "admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("plan_downgrade_disallowed"))
    );
    let held: Vec<String> = state.products(site).into_iter().map(|p| p.slug).collect();
    assert_eq!(held, ["premium", "jetpack-backup-daily", "jetpack-scan"]);
    assert!(state.products(site).iter().all(|p| p.ours && !p.pending));
    let seen = products_of(&client, &base, &token, site).await;
    assert_eq!(
        slugs(&seen),
        ["jetpack_premium", "jetpack_backup_daily", "jetpack_scan"]
    );

    assert!(cancel_with(&client, &base, &token, site, &[("plan", "jetpack-scan")]).await);
    assert!(!cancel_with(&client, &base, &token, site, &[("plan", "jetpack-scan")]).await);
    // Without `plan`, the family plan goes and the product stays.
    assert!(cancel_with(&client, &base, &token, site, &[]).await);
    assert_eq!(state.plan(site).unwrap().slug, "jetpack-backup-daily");
    assert!(!cancel_with(&client, &base, &token, site, &[("plan", "personal")]).await);
    // A family slug cancels the family plan, whichever it is.
    provision(&client, &base, &token, "professional", site, "admin").await;
    assert!(cancel_with(&client, &base, &token, site, &[("plan", "premium")]).await);
    assert_eq!(state.products(site).len(), 1);
    provision(&client, &base, &token, "free", site, "admin").await;
    assert!(cancel_with(&client, &base, &token, site, &[("cancel-all", "true")]).await);
    assert!(state.products(site).is_empty() && state.plans().is_empty());
    let calls = state.calls(site);
    assert_eq!(
        (calls.provision_ok, calls.cancel, calls.cancel_ok),
        (6, 6, 4)
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn status_lags_behind_what_the_site_holds() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let lag = std::time::Duration::from_millis(500);
    let config = client
        .post(format!("{base}/_sandbox/config"))
        .json(&json!({"status_lag_ms": 500}));
    let (status, body) = send_json(config).await;
    assert_eq!((status, body["status_lag_ms"].as_u64()), (200, Some(500)));
    assert_eq!(state.status_lag(), lag);

    let provisioned = std::time::Instant::now();
    provision(&client, &base, &token, "premium", "example.com", "admin").await;
    assert_eq!(state.plan("example.com").unwrap().slug, "premium");
    assert!(
        products_of(&client, &base, &token, "example.com")
            .await
            .is_empty()
    );
    tokio::time::sleep_until((provisioned + lag).into()).await;
    let seen = products_of(&client, &base, &token, "example.com").await;
    assert_eq!(slugs(&seen), ["jetpack_premium"]);

    let cancelled = std::time::Instant::now();
    assert!(cancel_with(&client, &base, &token, "example.com", &[]).await);
    assert_eq!(state.plan("example.com"), None);
    let seen = products_of(&client, &base, &token, "example.com").await;
    assert_eq!(slugs(&seen), ["jetpack_premium"]);
    tokio::time::sleep_until((cancelled + lag).into()).await;
    assert!(
        products_of(&client, &base, &token, "example.com")
            .await
            .is_empty()
    );

    state.set_status_lag(std::time::Duration::ZERO);
    provision(&client, &base, &token, "premium", "example.com", "admin").await;
    assert_eq!(
        products_of(&client, &base, &token, "example.com")
            .await
            .len(),
        1
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn portal_changes_show_in_status_without_counting_as_ours() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let site = "example.com";
    state.portal_add(site, "jetpack-scan", false);
    let status = client
        .get(format!("{base}/rest/v1.4/jpphp/{site}/status"))
        .bearer_auth(&token);
    let (_, body) = send_json(status).await;
    assert_eq!(
        body["products"],
        json!([{"slug": "jetpack_scan", "is_provisioned_by_partner": false,
                "is_provisioned_by_calling_partner": false, "is_pending": false}])
    );
    // Not ours: neither a cancel of it nor cancel-all removes it.
    assert!(!cancel_with(&client, &base, &token, site, &[("plan", "jetpack-scan")]).await);
    assert!(!cancel_with(&client, &base, &token, site, &[("cancel-all", "true")]).await);

    provision(&client, &base, &token, "premium", site, "admin").await;
    assert!(state.portal_cancel(site, Some("premium")));
    assert!(!state.portal_cancel(site, Some("premium")));
    let seen = products_of(&client, &base, &token, site).await;
    assert_eq!(seen, [("jetpack_scan".to_owned(), false, false)]);
    assert!(!cancel_with(&client, &base, &token, site, &[]).await);

    let portal =
        |body: serde_json::Value| client.post(format!("{base}/_sandbox/portal")).json(&body);
    let (status, body) = send_json(portal(
        json!({"site": "Example.com", "add": "personal", "ours": true}),
    ))
    .await;
    assert_eq!(
        (status, body["products"][0]["slug"].as_str()),
        (200, Some("personal"))
    );
    let seen = products_of(&client, &base, &token, site).await;
    assert_eq!(seen[0], ("jetpack_personal".to_owned(), true, false));
    let (status, body) = send_json(portal(json!({"site": site, "cancel": null}))).await;
    assert_eq!((status, body["removed"].as_bool()), (200, Some(true)));
    assert!(state.products(site).is_empty());
    assert_eq!(send_json(portal(json!({"site": site}))).await.0, 400);

    let calls = state.calls(site);
    assert_eq!((calls.provision, calls.provision_ok), (1, 1));
    assert_eq!((calls.cancel, calls.cancel_ok), (3, 0));
    assert_eq!(state.acting_calls().len(), 4);
    sandbox.shutdown().await;
}
