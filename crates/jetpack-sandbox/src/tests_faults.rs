//! Tests of scripted replies and random faults: what a reqwest client actually sees.

use std::time::Duration;

use serde_json::Value;

use super::tests::{provision_request, start, token};
use super::*;

#[tokio::test]
async fn scripted_status_with_retry_after_does_not_act() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script(
        "example.com",
        vec![ScriptedReply::Status {
            code: 429,
            body: r#"{"error":"rate_limited","message":"Slow down"}"#.to_owned(),
            retry_after: Some("7".to_owned()),
        }],
    );
    let response = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(state.plan("example.com"), None);

    // The script is used up: the next call behaves normally.
    let response = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        state.calls("example.com"),
        SiteCalls {
            provision: 2,
            provision_ok: 1,
            ..SiteCalls::default()
        }
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn reset_gives_a_client_error_without_acting() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script("example.com", vec![ScriptedReply::Reset]);
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await;
    let error = result.expect_err("a reset must not produce a response");
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");
    assert_eq!(state.plan("example.com"), None);
    assert_eq!(state.calls("example.com").provision, 1);
    assert_eq!(state.calls("example.com").provision_ok, 0);

    // The same client recovers on a fresh connection.
    let response = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn act_then_reset_records_the_plan_but_the_client_gets_an_error() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script("example.com", vec![ScriptedReply::ActThenReset]);
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(state.plan("example.com").unwrap().slug, "premium");
    assert_eq!(state.calls("example.com").provision_ok, 1);

    state.script("example.com", vec![ScriptedReply::ActThenReset]);
    let result = client
        .post(format!("{base}/rest/v1.3/jpphp/example.com/partner-cancel"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(state.plan("example.com"), None);
    assert_eq!(state.calls("example.com").cancel_ok, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn hang_outlasts_a_client_timeout() {
    let config = SandboxConfig {
        hang: Duration::from_secs(3),
        ..SandboxConfig::default()
    };
    let sandbox = start(config).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script("example.com", vec![ScriptedReply::Hang]);
    let started = std::time::Instant::now();
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let error = result.expect_err("the hang must outlast the client timeout");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Shutting down cuts the hang short instead of waiting it out.
    let started = std::time::Instant::now();
    sandbox.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn full_fault_rate_never_answers_200() {
    let config = SandboxConfig {
        fault_rate: 1.0,
        hang: Duration::from_secs(5),
        seed: Some(7),
        ..SandboxConfig::default()
    };
    let sandbox = start(config).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let token = token(&client, &base).await;
    let (mut errors, mut statuses) = (0, Vec::new());
    for i in 0..20 {
        let site = format!("site{i}.example.com");
        match provision_request(&client, &base, &token, "premium", &site, "admin")
            .send()
            .await
        {
            Ok(response) => statuses.push(response.status().as_u16()),
            Err(_) => errors += 1,
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 500 || *s == 503),
        "{statuses:?}"
    );
    assert!(errors > 0 && !statuses.is_empty(), "{errors} {statuses:?}");
    assert_eq!(
        state.all_calls().values().map(|c| c.provision).sum::<u64>(),
        20
    );

    // Turning faults off restores normal behaviour.
    state.set_fault_rate(0.0);
    let response = provision_request(&client, &base, &token, "premium", "ok.example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn raw_reply_is_sent_exactly_without_acting() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let page = format!(
        "<html><body>{}</body></html>",
        "<p>502 Bad Gateway</p>".repeat(300 * 1024 / 22)
    );
    assert!(page.len() > 300 * 1000);
    state.script(
        "example.com",
        vec![ScriptedReply::Raw {
            code: 502,
            content_type: "text/html; charset=utf-8".to_owned(),
            body: page.clone(),
        }],
    );
    let response = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), page);
    assert_eq!(state.plan("example.com"), None);
    assert_eq!(state.calls("example.com").provision_ok, 0);
    assert!(!state.acting_calls()[0].acted);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn slow_delays_one_site_then_acts_while_others_stay_fast() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let slow_for = Duration::from_millis(800);
    state.script("slow.example.com", vec![ScriptedReply::Slow(slow_for)]);
    let started = std::time::Instant::now();
    let slow = async {
        let response = provision_request(
            &client,
            &base,
            &token,
            "premium",
            "slow.example.com",
            "admin",
        )
        .send()
        .await
        .unwrap();
        (response.status().as_u16(), started.elapsed())
    };
    let fast = async {
        let response = provision_request(
            &client,
            &base,
            &token,
            "premium",
            "fast.example.com",
            "admin",
        )
        .send()
        .await
        .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(state.in_flight_acting_calls("slow.example.com"), 1);
        (response.status().as_u16(), elapsed)
    };
    let ((slow_status, slow_took), (fast_status, fast_took)) = tokio::join!(slow, fast);
    assert_eq!((slow_status, fast_status), (200, 200));
    assert!(slow_took >= slow_for, "{slow_took:?}");
    assert!(fast_took < slow_for / 2, "{fast_took:?}");
    assert_eq!(state.plan("slow.example.com").unwrap().slug, "premium");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn slow_is_cut_short_by_shutdown_without_acting() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script(
        "example.com",
        vec![ScriptedReply::Slow(Duration::from_secs(30))],
    );
    let request = provision_request(&client, &base, &token, "premium", "example.com", "admin");
    let pending = tokio::spawn(request.send());
    super::tests::eventually(|| state.in_flight_acting_calls("example.com") == 1).await;
    let started = std::time::Instant::now();
    sandbox.shutdown().await;
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(state.plan("example.com"), None);
}

#[tokio::test]
async fn a_provision_that_lands_late_shows_only_after_its_delay_and_counts_once() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let late = Duration::from_millis(700);
    state.script("example.com", vec![ScriptedReply::LandsLate(late)]);
    let started = std::time::Instant::now();
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.expect_err("a late call never answers").is_timeout());
    let status = || {
        client
            .get(format!("{base}/rest/v1.4/jpphp/example.com/status"))
            .bearer_auth(&token)
            .send()
    };
    let body: Value = status().await.unwrap().json().await.unwrap();
    assert_eq!(body["products"], serde_json::json!([]));
    assert_eq!(state.calls("example.com").provision_ok, 0);
    super::tests::eventually(|| state.in_flight_acting_calls("example.com") == 0).await;
    assert!(!state.acting_calls()[0].acted);

    super::tests::eventually(|| state.plan("example.com").is_some()).await;
    assert!(started.elapsed() >= late, "{:?}", started.elapsed());
    let body: Value = status().await.unwrap().json().await.unwrap();
    assert_eq!(body["products"][0]["slug"], "jetpack_premium");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = state.calls("example.com");
    assert_eq!((calls.provision, calls.provision_ok), (1, 1));
    let acting = state.acting_calls();
    assert_eq!(acting.len(), 1);
    assert!(acting[0].acted && acting[0].ended.is_some());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_late_cancel_is_dropped_after_the_hang_and_still_lands() {
    let config = SandboxConfig {
        hang: Duration::from_millis(200),
        ..SandboxConfig::default()
    };
    let sandbox = start(config).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    let response = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    state.script(
        "example.com",
        vec![ScriptedReply::LandsLate(Duration::from_millis(600))],
    );
    let started = std::time::Instant::now();
    let result = client
        .post(format!("{base}/rest/v1.3/jpphp/example.com/partner-cancel"))
        .bearer_auth(&token)
        .send()
        .await;
    // The hang (200 ms) ends first: the connection is dropped without an answer.
    let error = result.expect_err("a late call never answers");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(600));
    assert_eq!(state.plan("example.com").unwrap().slug, "premium");
    super::tests::eventually(|| state.plan("example.com").is_none()).await;
    assert!(started.elapsed() >= Duration::from_millis(600));
    let calls = state.calls("example.com");
    assert_eq!((calls.cancel, calls.cancel_ok), (1, 1));
    assert!(state.acting_calls()[1].acted);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_late_effect_is_dropped_when_the_sandbox_shuts_down_first() {
    let sandbox = start(SandboxConfig::default()).await;
    let (base, state) = (sandbox.base_url(), sandbox.state());
    let client = reqwest::Client::new();
    let token = token(&client, &base).await;
    state.script(
        "example.com",
        vec![ScriptedReply::LandsLate(Duration::from_millis(300))],
    );
    let result = provision_request(&client, &base, &token, "premium", "example.com", "admin")
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(result.is_err());
    sandbox.shutdown().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(state.plan("example.com"), None);
    assert_eq!(state.calls("example.com").provision_ok, 0);
}
