//! Unit tests of `response` (kept out of `response.rs` for length): how each endpoint's
//! answers (success shapes, both error shapes, transient cases, refused tokens, Retry-After)
//! are classified.

use super::*;

fn permanent(r: Result<ProvisionOutcome, Failure>) -> String {
    match r {
        Err(Failure::Permanent { message }) => message,
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[test]
fn provision_success_shapes() {
    let ok =
        br#"{"success":true,"next_url":"https://jetpack.wordpress.com/x","auth_required":true}"#;
    assert_eq!(
        classify_provision(200, ok, None),
        Ok(ProvisionOutcome::Activated {
            next_url: "https://jetpack.wordpress.com/x".into()
        })
    );
    let waiting = br#"{"success":true,"next_url":"","auth_required":true}"#;
    assert_eq!(
        classify_provision(200, waiting, None),
        Ok(ProvisionOutcome::WaitingDns)
    );
    let null = br#"{"success":true,"next_url":null}"#;
    assert_eq!(
        classify_provision(200, null, None),
        Ok(ProvisionOutcome::WaitingDns)
    );
}

#[test]
fn both_error_shapes_are_read() {
    let a = br#"{"error":"invalid_plan","message":"gold is not a valid plan"}"#;
    assert!(
        permanent(classify_provision(400, a, None))
            .contains("invalid_plan: gold is not a valid plan")
    );
    let b = br#"{"error_code":"invalid_local_user","error_message":"User nobody does not exist"}"#;
    assert!(
        permanent(classify_provision(400, b, None)).contains("invalid_local_user: User nobody")
    );
    let c = br#"{"success":false,"error_code":"unknown_error","error_message":"Empty response"}"#;
    assert!(permanent(classify_provision(200, c, None)).contains("unknown_error"));
}

#[test]
fn transient_cases() {
    for (status, body) in [
        (500u16, &b"{}"[..]),
        (503, b""),
        (429, br#"{"error":"rate_limited"}"#),
        (408, b""),
        (200, b""),
        (200, b"<html>oops</html>"),
    ] {
        match classify_provision(status, body, Some(Duration::from_secs(7))) {
            Err(Failure::Transient {
                retry_after,
                outcome_unknown,
                ..
            }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(!outcome_unknown);
            }
            other => panic!("{status}: expected transient, got {other:?}"),
        }
    }
}

#[test]
fn refused_tokens_are_told_apart_from_scope_errors() {
    let t = br#"{"error":"invalid_token","message":"The OAuth2 token is invalid."}"#;
    assert!(matches!(
        classify_provision(401, t, None),
        Err(Failure::TokenRefused { .. })
    ));
    assert!(matches!(
        classify_provision(403, t, None),
        Err(Failure::TokenRefused { .. })
    ));
    let scope = br#"{"error":"invalid_scope","message":"This token is not authorized"}"#;
    assert!(matches!(
        classify_provision(403, scope, None),
        Err(Failure::Permanent { .. })
    ));
}

#[test]
fn cancel_outcomes() {
    assert_eq!(
        classify_cancel(200, br#"{"success":true}"#, None),
        Ok(CancelOutcome::Cancelled)
    );
    assert_eq!(
        classify_cancel(200, br#"{"success":false}"#, None),
        Ok(CancelOutcome::NothingToCancel)
    );
    assert!(matches!(
        classify_cancel(404, b"{}", None),
        Err(Failure::Permanent { .. })
    ));
    assert!(matches!(
        classify_cancel(502, b"", None),
        Err(Failure::Transient { .. })
    ));
}

#[test]
fn status_products() {
    let body = br#"{"blog":{"is_connected":false},"products":[{"slug":"jetpack_business_monthly","is_provisioned_by_calling_partner":true,"is_pending":true},{"slug":"jetpack_complete","is_provisioned_by_calling_partner":false}]}"#;
    let p = classify_status(200, body, None).unwrap();
    assert_eq!(
        p,
        vec![
            SiteProduct {
                slug: "jetpack_business_monthly".into(),
                plan: Some("professional"),
                ours: true,
                pending: true
            },
            SiteProduct {
                slug: "jetpack_complete".into(),
                plan: None,
                ours: false,
                pending: false
            }
        ]
    );
}

#[test]
fn retry_after_forms() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Mon, 23 Nov 2026 10:01:00 GMT", now),
        Some(Duration::from_secs(60))
    );
    assert_eq!(parse_retry_after("soon", now), None);
}
