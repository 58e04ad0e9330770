use super::*;
use crate::domain::{AddonId, ServiceId};

fn holder(target: Target, plan: &str, live: bool) -> SiteHolder {
    SiteHolder {
        target,
        site: "site.example".to_owned(),
        plan: plan.to_owned(),
        live,
    }
}

const ME: Target = Target::Service(ServiceId(1));
const OTHER: Target = Target::Service(ServiceId(2));
const SITE: &str = "site.example";

#[test]
fn the_same_plan_held_by_a_live_other_target_is_kept() {
    let holders = [holder(OTHER, "premium", true)];
    assert_eq!(kept_by(ME, (SITE, "premium"), &holders), Some(&holders[0]));
}

#[test]
fn a_dead_holder_itself_or_another_site_keeps_nothing() {
    let mut elsewhere = holder(OTHER, "premium", true);
    elsewhere.site = "other.example".to_owned();
    let holders = [
        holder(OTHER, "premium", false),
        holder(ME, "premium", true),
        elsewhere,
    ];
    assert_eq!(kept_by(ME, (SITE, "premium"), &holders), None);
}

#[test]
fn an_addon_is_itself_under_any_parent() {
    let me = Target::Addon {
        addon: AddonId(9),
        service: ServiceId(1),
    };
    let moved = Target::Addon {
        addon: AddonId(9),
        service: ServiceId(3),
    };
    let holders = [holder(moved, "premium", true)];
    assert_eq!(kept_by(me, (SITE, "premium"), &holders), None);
}

#[test]
fn any_family_plan_keeps_a_family_plan_and_the_same_slug_comes_first() {
    let holders = [
        holder(OTHER, "personal", true),
        holder(Target::Service(ServiceId(3)), "professional", true),
        holder(Target::Service(ServiceId(4)), "premium", true),
    ];
    let kept = kept_by(ME, (SITE, "premium"), &holders).unwrap();
    assert_eq!(kept.target, Target::Service(ServiceId(4)));
    let kept = kept_by(ME, (SITE, "personal"), &holders[1..]).unwrap();
    assert_eq!(kept.plan, "professional");
}

#[test]
fn a_standalone_product_is_kept_only_by_the_same_product() {
    let holders = [holder(OTHER, "premium", true)];
    assert_eq!(kept_by(ME, (SITE, "jetpack-backup-daily"), &holders), None);
    let holders = [holder(OTHER, "jetpack-backup-daily", true)];
    assert!(kept_by(ME, (SITE, "jetpack-backup-daily"), &holders).is_some());
    assert_eq!(kept_by(ME, (SITE, "premium"), &holders), None);
}

#[test]
fn a_change_down_sees_only_a_higher_family_plan() {
    let holders = [
        holder(OTHER, "premium", true),
        holder(Target::Service(ServiceId(3)), "professional", true),
        holder(Target::Service(ServiceId(4)), "jetpack-scan", true),
    ];
    let higher = higher_held(ME, (SITE, "personal"), &holders).unwrap();
    assert_eq!(higher.plan, "professional");
    assert_eq!(higher_held(ME, (SITE, "professional"), &holders), None);
    assert_eq!(higher_held(ME, (SITE, "jetpack-scan"), &holders[2..]), None);
    assert_eq!(
        higher_held(ME, (SITE, "personal"), &holders[..1])
            .unwrap()
            .plan,
        "premium"
    );
}
