use std::time::{Duration, Instant};

use super::*;

const TROUBLE: Verdict = Verdict::Trouble(None);

fn policy() -> BreakerPolicy {
    BreakerPolicy {
        window: 10,
        min_calls: 4,
        trouble_ratio: 0.5,
        cool_down: Duration::from_secs(5),
        max_cool_down: Duration::from_secs(20),
        max_retry_after: Duration::from_secs(60),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A breaker opened at `t0` by four troubled calls.
fn opened(t0: Instant) -> Breaker {
    let mut b = Breaker::new(policy());
    for _ in 0..3 {
        assert_eq!(b.record(t0, TROUBLE), None);
    }
    assert_eq!(
        b.record(t0, TROUBLE),
        Some(Change::Opened {
            for_: secs(5),
            troubled: 4,
            of: 4
        })
    );
    b
}

#[test]
fn a_closed_breaker_admits_everyone_and_few_troubles_do_not_open_it() {
    let t0 = Instant::now();
    let mut b = Breaker::new(policy());
    for _ in 0..3 {
        assert_eq!(b.record(t0, TROUBLE), None, "below the minimum count");
    }
    assert_eq!(b.admit(t0), Admission::Call(None));
    let mut b = Breaker::new(policy());
    for i in 0..30 {
        let v = if i % 3 == 2 {
            TROUBLE
        } else {
            Verdict::Healthy
        };
        assert_eq!(b.record(t0, v), None, "a third in trouble stays closed");
    }
    assert_eq!(b.admit(t0), Admission::Call(None));
}

#[test]
fn definitive_answers_are_healthy_and_keep_it_closed() {
    let t0 = Instant::now();
    let mut b = Breaker::new(policy());
    for _ in 0..20 {
        assert_eq!(b.record(t0, Verdict::Healthy), None);
    }
    assert!(!b.is_holding());
}

#[test]
fn most_recent_calls_in_trouble_open_it_until_the_cool_down() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    assert!(b.is_holding());
    assert_eq!(b.admit(t0 + secs(1)), Admission::Hold(t0 + secs(5)));
    assert_eq!(b.admit(t0 + secs(4)), Admission::Hold(t0 + secs(5)));
}

#[test]
fn half_open_admits_exactly_one_probe_and_its_success_closes() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let t1 = t0 + secs(5);
    let Admission::Call(Some(_)) = b.admit(t1) else {
        panic!("the first job after the cool-down is the probe")
    };
    for _ in 0..5 {
        assert_eq!(b.admit(t1), Admission::Hold(t1 + secs(5)), "one probe only");
    }
    assert_eq!(b.record(t1, Verdict::Healthy), Some(Change::Closed));
    assert_eq!(b.admit(t1), Admission::Call(None));
    // The window starts afresh: three troubles are below the minimum again.
    for _ in 0..3 {
        assert_eq!(b.record(t1, TROUBLE), None);
    }
}

#[test]
fn a_failed_probe_reopens_with_a_growing_capped_cool_down() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let mut t = t0 + secs(5);
    for want in [10, 20, 20] {
        assert!(matches!(b.admit(t), Admission::Call(Some(_))));
        assert_eq!(
            b.record(t, TROUBLE),
            Some(Change::Reopened { for_: secs(want) })
        );
        assert_eq!(b.admit(t + secs(want - 1)), Admission::Hold(t + secs(want)));
        t += secs(want);
    }
    assert!(matches!(b.admit(t), Admission::Call(Some(_))));
    assert_eq!(b.record(t, Verdict::Healthy), Some(Change::Closed));
    // Closed again: the next opening starts from the first cool-down.
    let mut b2 = b.clone();
    for _ in 0..3 {
        b2.record(t, TROUBLE);
    }
    assert_eq!(
        b2.record(t, TROUBLE),
        Some(Change::Opened {
            for_: secs(5),
            troubled: 4,
            of: 4
        })
    );
}

#[test]
fn retry_after_longer_than_the_cool_down_is_honoured_and_clamped() {
    let t0 = Instant::now();
    let mut b = Breaker::new(policy());
    for _ in 0..3 {
        b.record(t0, TROUBLE);
    }
    let change = b.record(t0, Verdict::Trouble(Some(secs(30))));
    assert_eq!(
        change,
        Some(Change::Opened {
            for_: secs(30),
            troubled: 4,
            of: 4
        })
    );
    assert_eq!(b.admit(t0 + secs(29)), Admission::Hold(t0 + secs(30)));
    // A late answer (sent before the opening) with a longer Retry-After extends it.
    assert_eq!(b.record(t0, Verdict::Trouble(Some(secs(40)))), None);
    assert_eq!(b.admit(t0 + secs(35)), Admission::Hold(t0 + secs(40)));
    // A failed probe honours its own Retry-After, clamped to the policy's maximum.
    assert!(matches!(b.admit(t0 + secs(40)), Admission::Call(Some(_))));
    let t = t0 + secs(40);
    assert_eq!(
        b.record(t, Verdict::Trouble(Some(secs(3600)))),
        Some(Change::Reopened { for_: secs(60) })
    );
}

#[test]
fn a_retry_after_seen_earlier_still_counts_at_the_opening() {
    let t0 = Instant::now();
    let mut b = Breaker::new(policy());
    b.record(t0, Verdict::Trouble(Some(secs(12))));
    for _ in 0..3 {
        b.record(t0 + secs(1), TROUBLE);
    }
    assert_eq!(b.admit(t0 + secs(11)), Admission::Hold(t0 + secs(12)));
}

#[test]
fn late_outcomes_while_open_change_nothing() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    assert_eq!(b.record(t0 + secs(1), Verdict::Healthy), None);
    assert_eq!(b.record(t0 + secs(1), TROUBLE), None);
    assert_eq!(b.admit(t0 + secs(2)), Admission::Hold(t0 + secs(5)));
}

#[test]
fn an_abandoned_probe_lets_the_next_job_probe() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let t1 = t0 + secs(5);
    let Admission::Call(Some(first)) = b.admit(t1) else {
        panic!("probe expected")
    };
    b.probe_abandoned(first + 100);
    assert!(matches!(b.admit(t1), Admission::Hold(_)), "a stranger's id");
    b.probe_abandoned(first);
    let Admission::Call(Some(second)) = b.admit(t1) else {
        panic!("the next job probes")
    };
    assert_ne!(first, second);
    // The first probe's late abandonment does not free the second one's slot.
    b.probe_abandoned(first);
    assert!(matches!(b.admit(t1), Admission::Hold(_)));
}

#[test]
fn a_pace_spaces_calls_evenly_without_bursts() {
    let t0 = Instant::now();
    let mut p = Pace::new(4.0);
    assert_eq!(p.wait(t0), Duration::ZERO);
    let waits: Vec<Duration> = (0..4).map(|_| p.reserve(t0)).collect();
    assert_eq!(
        waits,
        [0, 250, 500, 750].map(Duration::from_millis).to_vec()
    );
    assert_eq!(p.wait(t0), Duration::from_millis(1000));
    // After a quiet spell the next call goes at once: no saved-up burst.
    let later = t0 + secs(10);
    assert_eq!(p.reserve(later), Duration::ZERO);
    assert_eq!(p.reserve(later), Duration::from_millis(250));
}
