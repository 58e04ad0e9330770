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
