//! Unit tests of `domain` (kept out of `domain.rs` for length): plan slugs, site URL
//! normalisation and rejection, and job-state spellings.

use super::*;

#[test]
fn plan_accepts_any_case_and_newer_slugs() {
    assert_eq!(Plan::parse(" Premium ").unwrap().as_str(), "premium");
    assert_eq!(
        Plan::parse("JETPACK-SCAN").unwrap().as_str(),
        "jetpack-scan"
    );
    assert!(Plan::parse("gold").is_none());
    assert!(Plan::parse("").is_none());
    assert!(
        Plan::parse("jetpack-backup-daily")
            .unwrap()
            .is_standalone_product()
    );
    assert!(!Plan::parse("personal").unwrap().is_standalone_product());
}

#[test]
fn site_url_strips_scheme_and_trailing_slash() {
    let s = SiteUrl::parse("https://Example.COM/blog/").unwrap();
    assert_eq!(s.as_str(), "example.com/blog");
    assert_eq!(s.host(), "example.com");
    assert_eq!(s.path_id(), "example.com::blog");
    assert_eq!(
        SiteUrl::parse("HTTP://a.example").unwrap().as_str(),
        "a.example"
    );
    assert_eq!(
        SiteUrl::parse("a.example:8080/wp").unwrap().as_str(),
        "a.example:8080/wp"
    );
    assert_eq!(
        SiteUrl::parse("bücher.example").unwrap().as_str(),
        "xn--bcher-kva.example"
    );
    assert_eq!(SiteUrl::parse("192.0.2.7").unwrap().host(), "192.0.2.7");
}

#[test]
fn site_url_rejects_junk() {
    assert_eq!(SiteUrl::parse("  "), Err(SiteUrlError::Empty));
    for bad in [
        "javascript:alert(1)",
        "ftp://example.com",
        "example.com/?q=1",
        "exa mple.com",
        "localhost",
        "user:pw@example.com",
        "<script>.com/",
    ] {
        assert!(SiteUrl::parse(bad).is_err(), "{bad} should be rejected");
    }
    assert!(SiteUrl::parse(&"a".repeat(2000)).is_err());
}

#[test]
fn states_round_trip() {
    for st in JobState::ALL {
        assert_eq!(JobState::parse(st.as_str()), Some(st));
    }
    assert_eq!(Action::parse("terminate"), Some(Action::Terminate));
    for by in RequestedBy::ALL {
        assert_eq!(RequestedBy::parse(by.as_str()), Some(by));
    }
}
