//! Tests of the sandbox's normal API behaviour over real HTTP on loopback.

use serde_json::{Value, json};

use super::*;

pub(super) async fn start(config: SandboxConfig) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

pub(super) async fn token(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jetpack-partner"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub(super) fn provision_request(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    plan: &str,
    siteurl: &str,
    local_user: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/rest/v1.3/jpphp/provision"))
        .bearer_auth(token)
        .form(&[
            ("plan", plan),
            ("siteurl", siteurl),
            ("local_user", local_user),
            ("force_register", "true"),
        ])
}

pub(super) async fn provision(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    plan: &str,
    siteurl: &str,
    local_user: &str,
) -> (u16, Value) {
    let response = provision_request(client, base, token, plan, siteurl, local_user)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub(super) async fn send_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[test]
fn site_keys_are_normalised() {
    assert_eq!(site_key("HTTPS://Example.COM/Blog/"), "example.com/Blog");
    assert_eq!(site_key("http://example.com"), "example.com");
    assert_eq!(site_key("example.com::blog"), "example.com/blog");
    assert_eq!(host_of("Example.com:8080/blog"), "example.com");
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let error = Sandbox::start("0.0.0.0:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn token_latency_delays_the_token_answer_and_not_the_rest() {
    let quick = start(SandboxConfig::default()).await;
    let slow = start(SandboxConfig {
        token_latency: std::time::Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let t = std::time::Instant::now();
    token(&client, &slow.base_url()).await;
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let t = std::time::Instant::now();
    token(&client, &quick.base_url()).await;
    assert!(
        t.elapsed() < std::time::Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn token_endpoint_checks_credentials_and_grant_type() {
    let sandbox = start(SandboxConfig::default()).await;
    let base = sandbox.base_url();
    let client = reqwest::Client::new();
    let good = token(&client, &base).await;
    assert!(good.starts_with("sbx_"), "{good}");
    assert!(good.contains(super::state::HOSTILE_TOKEN_PART), "{good}");
    assert_eq!(sandbox.state().issued_tokens(), vec![good.clone()]);

    let bad = client.post(format!("{base}/oauth2/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "demo-client"),
        ("client_secret", "wrong"),
    ]);
    let (status, body) = send_json(bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());

    let grant = client.post(format!("{base}/oauth2/token")).form(&[
        ("grant_type", "password"),
        ("client_id", "demo-client"),
        ("client_secret", "demo-secret"),
    ]);
    let (status, body) = send_json(grant).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(sandbox.state().token_calls(), 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn rest_needs_a_valid_token_and_revocation_invalidates_it() {
    let sandbox = start(SandboxConfig::default()).await;
    let base = sandbox.base_url();
    let client = reqwest::Client::new();
    let status_url = format!("{base}/rest/v1.4/jpphp/example.com/status");
    let (status, body) = send_json(client.get(&status_url)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    let (status, _) = send_json(client.get(&status_url).bearer_auth("sbx_made_up")).await;
    assert_eq!(status, 401);

    let token = token(&client, &base).await;
    let (status, _) = send_json(client.get(&status_url).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    sandbox.state().revoke_tokens();
    let (status, _) = send_json(client.get(&status_url).bearer_auth(&token)).await;
    assert_eq!(status, 401);
    assert_eq!(sandbox.state().calls("example.com").status, 4);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn provision_success_and_pending_until_dns_resolves() {
    let config = SandboxConfig {
        unresolvable: vec!["new.example.com".to_owned()],
        ..SandboxConfig::default()
    };
    let sandbox = start(config).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;

    let (status, body) = provision(
        &client,
        &base,
        &token,
        "premium",
        "https://Example.com/blog/",
        "admin",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["auth_required"], true);
    assert_eq!(
        body["next_url"],
        "https://jetpack.wordpress.com/jetpack.authorize/1/?site=example.com%2Fblog"
    );
    let plan = state.plan("example.com/blog").unwrap();
    assert_eq!((plan.slug.as_str(), plan.pending), ("premium", false));

    assert!(!state.is_resolvable("new.example.com"));
    let (status, body) = provision(
        &client,
        &base,
        &token,
        "personal",
        "new.example.com",
        "admin",
    )
    .await;
    assert_eq!((status, body["next_url"].as_str()), (200, Some("")));
    assert!(state.plan("new.example.com").unwrap().pending);
    let (_, body) = send_json(
        client
            .get(format!("{base}/rest/v1.4/jpphp/new.example.com/status"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(body["blog"]["is_connected"], false);
    assert_eq!(body["products"][0]["is_pending"], true);

    state.set_resolvable("new.example.com", true);
    let (status, body) = provision(
        &client,
        &base,
        &token,
        "personal",
        "new.example.com",
        "admin",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["next_url"]
            .as_str()
            .unwrap()
            .contains("site=new.example.com")
    );
    assert!(!state.plan("new.example.com").unwrap().pending);
    assert_eq!(
        state.calls("new.example.com"),
        SiteCalls {
            provision: 2,
            provision_ok: 2,
            status: 1,
            ..SiteCalls::default()
        }
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn provision_validation_errors_use_both_shapes() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;

    let (status, body) = provision(&client, &base, &token, "gold", "example.com", "admin").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_plan", "message": "gold is not a valid plan"})
    );
    let (status, body) =
        provision(&client, &base, &token, "premium", "example.com", "nobody").await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], "invalid_local_user");
    assert_eq!(
        body["error_message"],
        "User nobody does not exist on the remote site."
    );
    let (status, body) = provision(&client, &base, &token, "premium", "", "admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_siteurl"))
    );
    let (status, body) = provision(&client, &base, &token, "premium", "example.com", "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_local_user"))
    );
    assert_eq!(state.plan("example.com"), None);
    assert_eq!(state.calls("example.com").provision, 3);
    assert_eq!(state.calls("example.com").provision_ok, 0);

    let (status, _) = provision(
        &client,
        &base,
        &token,
        "professional",
        "example.com",
        "admin",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) =
        provision(&client, &base, &token, "personal", "example.com", "admin").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "plan_downgrade_disallowed");
    assert_eq!(state.plan("example.com").unwrap().slug, "professional");
    sandbox.shutdown().await;
}

/// Waits (at most 3 s) until `check` holds.
pub(super) async fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sequential_acting_calls_are_logged_and_do_not_overlap() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    for plan in ["premium", "premium", "gold"] {
        provision(
            &client,
            &base,
            &token,
            plan,
            "https://Example.com/",
            "admin",
        )
        .await;
    }
    let cancel = client
        .post(format!("{base}/rest/v1.3/jpphp/example.com/partner-cancel"))
        .bearer_auth(&token);
    assert_eq!(send_json(cancel).await.0, 200);
    let status = client
        .get(format!("{base}/rest/v1.4/jpphp/example.com/status"))
        .bearer_auth(&token);
    assert_eq!(send_json(status).await.0, 200);

    let calls = state.acting_calls();
    let summary: Vec<_> = calls
        .iter()
        .map(|c| (c.seq, c.site.as_str(), c.kind, c.acted, c.plan.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                0,
                "example.com",
                ActingKind::Provision,
                true,
                Some("premium")
            ),
            (
                1,
                "example.com",
                ActingKind::Provision,
                true,
                Some("premium")
            ),
            (2, "example.com", ActingKind::Provision, false, Some("gold")),
            (3, "example.com", ActingKind::Cancel, true, None),
        ]
    );
    for pair in calls.windows(2) {
        let ended = pair[0].ended.unwrap();
        assert!(pair[0].started <= ended && ended < pair[1].started);
    }
    assert!(state.overlapping_acting_calls().is_empty());
    assert_eq!(state.in_flight_acting_calls("example.com"), 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn concurrent_slow_provisions_to_the_same_site_overlap() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let slow = ScriptedReply::Slow(std::time::Duration::from_millis(400));
    state.script("example.com", vec![slow.clone(), slow.clone()]);
    state.script("other.example.com", vec![slow]);
    let send = |site: &'static str| {
        provision_request(&client, &base, &token, "premium", site, "admin").send()
    };
    let watch = async {
        eventually(|| state.in_flight_acting_calls("https://EXAMPLE.com") == 2).await;
        assert_eq!(state.in_flight_acting_calls("other.example.com"), 1);
    };
    let (a, b, c, ()) = tokio::join!(
        send("example.com"),
        send("example.com/"),
        send("other.example.com"),
        watch
    );
    for response in [a, b, c] {
        assert_eq!(response.unwrap().status(), 200);
    }
    let pairs = state.overlapping_acting_calls();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let (first, second) = &pairs[0];
    assert_eq!(
        (first.site.as_str(), second.site.as_str()),
        ("example.com", "example.com")
    );
    assert!(first.seq < second.seq && first.acted && second.acted);
    assert_eq!(state.in_flight_acting_calls("example.com"), 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn calls_in_flight_are_counted_with_their_peak_and_control_calls_are_not() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    assert_eq!(
        (state.calls_in_flight(), state.peak_calls_in_flight()),
        (0, 1)
    );
    state.reset_peak_calls_in_flight();
    let slow = ScriptedReply::Slow(std::time::Duration::from_millis(400));
    for site in ["a.example", "b.example", "c.example"] {
        state.script(site, vec![slow.clone()]);
    }
    let send = |site: &'static str| {
        provision_request(&client, &base, &token, "premium", site, "admin").send()
    };
    let watch = async {
        eventually(|| state.calls_in_flight() == 3).await;
        let calls: Value = client
            .get(format!("{base}/_sandbox/calls"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                calls["in_flight"].as_u64(),
                calls["peak_in_flight"].as_u64()
            ),
            (Some(3), Some(3))
        );
    };
    let (a, b, c, ()) = tokio::join!(
        send("a.example"),
        send("b.example"),
        send("c.example"),
        watch
    );
    for response in [a, b, c] {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(
        (state.calls_in_flight(), state.peak_calls_in_flight()),
        (0, 3)
    );
    // The three 400 ms calls overlapped for nearly all of the busy span.
    let mean = state.mean_calls_in_flight();
    assert!((2.5..=3.0).contains(&mean), "mean in flight {mean}");
    let reset = client
        .post(format!("{base}/_sandbox/reset-peak"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(state.peak_calls_in_flight(), 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_handler_dropped_by_a_client_disconnect_records_its_end() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let slow = ScriptedReply::Slow(std::time::Duration::from_secs(30));
    state.script("example.com", vec![slow]);
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    eventually(|| state.in_flight_acting_calls("example.com") == 0).await;
    let calls = state.acting_calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].ended.is_some() && !calls[0].acted);
    assert_eq!(state.plan("example.com"), None);
    sandbox.shutdown().await;
}

#[test]
fn status_slug_spells_every_form_slug_in_each_spelling() {
    use Spelling::{Hyphenated, Short, Wpcom, WpcomMonthly};
    let table = [
        ("free", "jetpack_free", "jetpack-free"),
        ("personal", "jetpack_personal", "jetpack-personal"),
        ("premium", "jetpack_premium", "jetpack-premium"),
        ("professional", "jetpack_business", "jetpack-business"),
        (
            "jetpack-backup-daily",
            "jetpack_backup_daily",
            "jetpack-backup-daily",
        ),
        (
            "jetpack-backup-realtime",
            "jetpack_backup_realtime",
            "jetpack-backup-realtime",
        ),
        ("jetpack-scan", "jetpack_scan", "jetpack-scan"),
        (
            "jetpack-anti-spam",
            "jetpack_anti_spam",
            "jetpack-anti-spam",
        ),
    ];
    for (short, wpcom, hyphenated) in table {
        assert_eq!(status_slug(short, Short), short);
        assert_eq!(status_slug(short, Wpcom), wpcom);
        assert_eq!(status_slug(short, WpcomMonthly), format!("{wpcom}_monthly"));
        assert_eq!(status_slug(short, Hyphenated), hyphenated);
    }
    assert_eq!(Spelling::default(), Wpcom);
    for spelling in Spelling::ALL {
        assert_eq!(spelling.as_str().parse::<Spelling>(), Ok(spelling));
    }
    assert!("jetpack".parse::<Spelling>().is_err());
}

#[test]
fn history_is_pruned_to_the_status_lag() {
    let plan = |slug: &str| SitePlan {
        slug: slug.to_owned(),
        pending: false,
        ours: true,
    };
    let mut holdings = super::products::Holdings::default();
    for slug in ["personal", "premium", "professional"] {
        holdings.set("example.com", vec![plan(slug)]);
    }
    // Without a lag only the set in force is kept.
    assert_eq!(holdings.history_len("example.com"), 1);
    holdings.status_lag = std::time::Duration::from_millis(100);
    holdings.set("example.com", vec![plan("free")]);
    holdings.set("example.com", Vec::new());
    assert_eq!(holdings.history_len("example.com"), 3);
    assert_eq!(holdings.lagged("example.com")[0].slug, "professional");
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert!(holdings.lagged("example.com").is_empty());
    holdings.set("example.com", vec![plan("premium")]);
    // The empty set was in force 100 ms ago: everything older is gone.
    assert_eq!(holdings.history_len("example.com"), 2);
    assert!(holdings.lagged("example.com").is_empty());
    assert_eq!(holdings.get("example.com")[0].slug, "premium");
}
