//! Tests of the sandbox's Licensing API over real HTTP on loopback.

use serde_json::{Value, json};

use super::tests::start;
use super::*;

fn url(sandbox: &Sandbox, path: &str) -> String {
    format!("{}{LICENSING_BASE}{path}", sandbox.base_url())
}

async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_licence_is_issued_looked_up_attached_and_revoked() {
    let sandbox = start(SandboxConfig::default()).await;
    let client = reqwest::Client::new();
    let (status, by_query) = call(
        client
            .post(url(&sandbox, "/license?product=jetpack-backup-daily"))
            .bearer_auth(LISTING_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{by_query}");
    let key = by_query["license_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("jetpack-backup-daily_"), "{key}");
    let (status, by_body) = call(
        client
            .post(url(&sandbox, "/license"))
            .bearer_auth(LISTING_TOKEN)
            .json(&json!({"product": "jetpack-scan"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        by_body["license_key"]
            .as_str()
            .unwrap()
            .starts_with("jetpack-scan_")
    );
    assert_eq!(sandbox.state().licences_issued_to(LISTING_TOKEN), 2);

    let lookup = format!("/license?license_key={key}");
    let (status, found) = call(
        client
            .get(url(&sandbox, &lookup))
            .bearer_auth(LISTING_TOKEN),
    )
    .await;
    assert_eq!((status, found["revoked_at"].clone()), (200, Value::Null));
    let (status, _) = call(client.get(url(&sandbox, &lookup)).bearer_auth(PLAIN_TOKEN)).await;
    assert_eq!(status, 404, "another partner's licence is not found");

    let site = format!("/license/{key}/site");
    let body = json!({"site": "https://Example.com/"});
    let (status, _) = call(
        client
            .post(url(&sandbox, &site))
            .bearer_auth(LISTING_TOKEN)
            .json(&body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        sandbox.state().licences()[0].site.as_deref(),
        Some("example.com")
    );

    let (status, revoked) = call(
        client
            .delete(url(&sandbox, &lookup))
            .bearer_auth(LISTING_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, again) = call(
        client
            .delete(url(&sandbox, &lookup))
            .bearer_auth(LISTING_TOKEN),
    )
    .await;
    assert_eq!(
        (status, &again["revoked_at"]),
        (200, &revoked["revoked_at"]),
        "revoking twice is harmless"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn only_some_tokens_list_or_attach_and_a_disabled_token_is_refused() {
    let sandbox = start(SandboxConfig::default()).await;
    let client = reqwest::Client::new();
    let issue = |token: &'static str| {
        client
            .post(url(&sandbox, "/license?product=jetpack-anti-spam"))
            .bearer_auth(token)
    };
    let (_, plain) = call(issue(PLAIN_TOKEN)).await;
    let (_, listed) = call(issue(LISTING_TOKEN)).await;
    let list = "/licenses?search=jetpack-anti-spam&filter=not_revoked&sort_field=issued_at";
    let (status, page) = call(client.get(url(&sandbox, list)).bearer_auth(LISTING_TOKEN)).await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the token's own licences: {page}");
    assert_eq!(items[0]["license_key"], listed["license_key"]);
    assert_eq!(items[0]["product"], "jetpack-anti-spam");
    let (status, refused) = call(client.get(url(&sandbox, list)).bearer_auth(PLAIN_TOKEN)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("rest_forbidden"))
    );

    let key = plain["license_key"].as_str().unwrap();
    let site = format!("/license/{key}/site");
    let (status, _) = call(
        client
            .post(url(&sandbox, &site))
            .bearer_auth(PLAIN_TOKEN)
            .json(&json!({"site": "a.example"})),
    )
    .await;
    assert_eq!(status, 403, "not allowlisted");

    assert!(
        sandbox
            .state()
            .set_licence_token_enabled(LISTING_TOKEN, false)
    );
    let (status, body) = call(issue(LISTING_TOKEN)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("invalid_token"))
    );
    let (status, _) = call(issue("not-a-token")).await;
    assert_eq!(status, 403);
    assert_eq!(sandbox.state().licences().len(), 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_issue_can_act_and_lose_its_answer_or_fail_without_acting() {
    let sandbox = start(SandboxConfig::default()).await;
    let client = reqwest::Client::new();
    let state = sandbox.state();
    state.script(
        "licence:jetpack-scan",
        vec![
            ScriptedReply::ActThenReset,
            ScriptedReply::Status {
                code: 503,
                body: "{}".into(),
                retry_after: Some("7".into()),
            },
        ],
    );
    let issue = || {
        client
            .post(url(&sandbox, "/license?product=jetpack-scan"))
            .bearer_auth(PLAIN_TOKEN)
            .send()
    };
    assert!(issue().await.is_err(), "the connection dropped");
    assert_eq!(state.licences().len(), 1, "yet the licence was issued");
    let answered = issue().await.unwrap();
    assert_eq!(answered.status(), 503);
    assert_eq!(answered.headers()["retry-after"], "7");
    assert_eq!(state.licences().len(), 1, "a 503 issues nothing");
    state.set_outage(Some(Outage::TooManyRequests {
        retry_after: Some(3),
    }));
    assert_eq!(issue().await.unwrap().status(), 429);
    state.set_outage(None);
    let calls = state.licence_calls();
    assert_eq!(
        (calls.issue, calls.issue_ok),
        (2, 1),
        "the outage answered before the API"
    );

    let families: Value = client
        .get(url(&sandbox, "/product-families"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = families
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["products"].as_array().unwrap())
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"jetpack-backup-daily"), "{slugs:?}");
    let (status, _) = call(client.get(url(&sandbox, "/partner/product-families"))).await;
    assert_eq!(status, 403, "the partner list needs a token");

    let control: Value = client
        .get(format!("{}/_sandbox/licences", sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(control["issued_by_token"]["1"], 1);
    assert!(
        !control.to_string().contains("sbxlic"),
        "the control endpoint names no token"
    );
    sandbox.shutdown().await;
}
