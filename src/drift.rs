//! The reconciler's rules, pure: what a status answer means for each target watching a site
//! (`judge`), and what to do about it (`decide`). Desired state is what each target's last
//! finished job left (`Expect`); observed state is the partner's status answer. A finding is
//! acted on only when a second check confirms it (a status that lags, or an effect that lands
//! late, settles in between), at most [`MAX_DRIFTS`] times per target and site, then reported
//! and left to an admin. Several targets on one site are judged together: a plan another live
//! target holds is never "unexpected".

use crate::domain::Action;
use crate::lifecycle::RequestKind;

/// Drifts acted on per target and site before the reconciler stops fighting and reports.
pub const MAX_DRIFTS: u16 = 3;

/// What a target's last finished job left at a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Provisioned: the plan should be there.
    Holds,
    /// Cancelled: it should not come back.
    Absent,
}

impl Expect {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Holds => "holds",
            Expect::Absent => "absent",
        }
    }

    /// Parses the stored value.
    pub fn parse(s: &str) -> Option<Expect> {
        [Expect::Holds, Expect::Absent]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// Whether the target's latest job (its latest intent) agrees with what its last finished
/// outcome left: a terminate after a plan was provisioned, or a provision after it was
/// cancelled, that did not succeed (it failed, and an admin has it) leaves the row alone, so
/// the reconciler never acts against the latest intent. No job (pruned): it agrees.
/// A suspend or unsuspend that succeeded agrees with either: what it left depends on the
/// product's suspend setting, and the watch already says what that was. One that `failed`
/// tried to change the plan (a suspend only calls to cancel it, an unsuspend to provision it
/// again) and left the watch as it was: a failed suspend of a held plan, or a failed
/// unsuspend of an absent one, is left to the admin too.
pub fn intent_agrees(expect: Expect, latest: Option<Action>, failed: bool) -> bool {
    match (expect, latest) {
        (Expect::Holds, Some(a)) => !(a.removes() || failed && a == Action::Suspend),
        (Expect::Absent, Some(a)) => !(a.provisions() || failed && a == Action::Unsuspend),
        (_, None) => true,
    }
}

/// Whether the partner already shows what a target's latest intent asked for although its job
/// failed: a plan expected held whose terminate (or cancelling suspend) failed, and that is
/// gone from the partner (a late cancel, the portal). Nothing is done at the partner; the ledger and the watch record
/// that the target no longer holds it, so the other targets on the site are judged by the
/// truth (the failed job stays for the admin).
pub fn settled_by_partner(
    expect: Expect,
    latest: Option<Action>,
    failed: bool,
    finding: Finding,
) -> bool {
    expect == Expect::Holds && !intent_agrees(expect, latest, failed) && finding == Finding::Missing
}

/// Whether a confirmed remedy fits what WHMCS says of the target now (`live`: its service or
/// addon is Pending, Active or Suspended; None: its row is gone): a plan is provisioned again
/// only for a live target, and a plan that came back is cancelled only for one that is not.
/// A suspended target whose latest job is its suspend intends no plan: a plan that came back
/// after the suspend cancelled it is cancelled again (by a suspend request, which leaves
/// WHMCS's status alone). Otherwise the drift is reported and an admin decides.
pub fn remedy_fits(remedy: Remedy, live: Option<bool>, latest: Option<Action>) -> bool {
    match remedy {
        Remedy::Provision => live == Some(true),
        Remedy::Cancel => live != Some(true) || latest == Some(Action::Suspend),
    }
}

/// The request that carries out a remedy: a cancel is a terminate, or a suspend for a target
/// whose latest job is its suspend (so its WHMCS status stays Suspended); a provision is a
/// Create.
pub fn remedy_request(remedy: Remedy, latest: Option<Action>) -> RequestKind {
    match remedy {
        Remedy::Cancel if latest == Some(Action::Suspend) => RequestKind::Suspend,
        Remedy::Cancel => RequestKind::Terminate,
        Remedy::Provision => RequestKind::Provision,
    }
}

/// What one check found for one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The partner holds what the target expects.
    Fine,
    /// The target's plan is not at the partner.
    Missing,
    /// A plan the target cancelled is there again, and no other live target on the site holds it.
    Unexpected,
    /// Products of ours the worker cannot name are there: it cannot tell.
    Unmapped,
}

impl Finding {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Fine => "fine",
            Finding::Missing => "missing",
            Finding::Unexpected => "unexpected",
            Finding::Unmapped => "unmapped",
        }
    }

    /// Parses the stored value (anything else reads as fine).
    pub fn parse(s: &str) -> Finding {
        [Finding::Missing, Finding::Unexpected, Finding::Unmapped]
            .into_iter()
            .find(|f| f.as_str() == s)
            .unwrap_or(Finding::Fine)
    }
}

/// The plan family's rank (personal < premium < professional); None for `free` and for
/// standalone products, which sit beside a plan rather than replace it.
pub fn family_rank(plan: &str) -> Option<u8> {
    // `free` is no plan of ours to hold or cancel: a free site is not a cancelled plan back.
    match plan {
        "personal" => Some(1),
        "premium" => Some(2),
        "professional" => Some(3),
        _ => None,
    }
}

/// Whether a site holding `found` (a plan of `rules.json`) gives a target everything `wanted`
/// is: the same product, or a higher plan of the family.
pub fn covers(found: &str, wanted: &str) -> bool {
    if found == wanted {
        return true;
    }
    matches!((family_rank(found), family_rank(wanted)), (Some(f), Some(w)) if f >= w)
}

/// A product the status endpoint listed, as the rules read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product<'a> {
    /// The plan of `rules.json` its slug names (None: a slug no plan matches).
    pub plan: Option<&'a str>,
    /// Provisioned by our partner account.
    pub ours: bool,
}

/// One target's expectation at the site, as `judge` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation<'a> {
    /// The plan slug (a plan of `rules.json`).
    pub plan: &'a str,
    /// Holds or absent.
    pub expect: Expect,
}

/// What the status answer `products` means for `row`, given every target watching the site
/// (`site`, `row` included).
pub fn judge(row: Expectation<'_>, site: &[Expectation<'_>], products: &[Product<'_>]) -> Finding {
    let ours: Vec<&Product<'_>> = products.iter().filter(|p| p.ours).collect();
    let unmapped = ours.iter().any(|p| p.plan.is_none());
    match row.expect {
        Expect::Holds => {
            if ours
                .iter()
                .any(|p| p.plan.is_some_and(|q| covers(q, row.plan)))
            {
                Finding::Fine
            } else if unmapped {
                Finding::Unmapped
            } else {
                Finding::Missing
            }
        }
        Expect::Absent => {
            let back = ours
                .iter()
                .filter_map(|p| p.plan)
                .filter(|q| takes_place_of(q, row.plan))
                .any(|q| !held_by_another(q, site));
            if back {
                Finding::Unexpected
            } else {
                Finding::Fine
            }
        }
    }
}

/// Whether `found` takes the place `plan` had: the same product, or any plan of the family
/// for a family plan (a site holds one plan).
pub fn takes_place_of(found: &str, plan: &str) -> bool {
    found == plan || (family_rank(found).is_some() && family_rank(plan).is_some())
}

/// Whether a target on the site that should hold a plan explains `found` being there.
fn held_by_another(found: &str, site: &[Expectation<'_>]) -> bool {
    site.iter()
        .filter(|e| e.expect == Expect::Holds)
        .any(|e| takes_place_of(found, e.plan))
}

/// What to do about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing is wrong.
    Fine,
    /// Found for the first time: look again before doing anything.
    Confirm,
    /// Confirmed: record a request through the lifecycle.
    Act(Remedy),
    /// Confirmed: show it (drift list, activity log), do nothing else.
    Report,
    /// Confirmed again after [`MAX_DRIFTS`] remedies: reported, left for an admin.
    GiveUp,
    /// Already reported or acted on; nothing new to say.
    Quiet,
}

/// The request a confirmed drift becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Cancel the plan that came back (a terminate request for the target).
    Cancel,
    /// Provision the missing plan again (a Create request; only when the setting allows it).
    Provision,
}

/// The reconciler's memory of a target at a site: what the last checks found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// What the last check found.
    pub seen: Finding,
    /// Consecutive checks that found it.
    pub times: u16,
    /// Drifts acted on so far.
    pub drifts: u16,
}

/// What to do about `now`, given what earlier checks found. `reprovision`: a missing plan
/// may be provisioned again (otherwise it is reported).
pub fn decide(now: Finding, before: Memory, reprovision: bool) -> Step {
    if now == Finding::Fine {
        return Step::Fine;
    }
    let times = if before.seen == now { before.times } else { 0 };
    match times {
        0 => Step::Confirm,
        1 => confirmed(now, before.drifts, reprovision),
        _ => Step::Quiet,
    }
}

fn confirmed(now: Finding, drifts: u16, reprovision: bool) -> Step {
    let remedy = match now {
        Finding::Unexpected => Remedy::Cancel,
        Finding::Missing if reprovision => Remedy::Provision,
        _ => return Step::Report,
    };
    if drifts >= MAX_DRIFTS {
        Step::GiveUp
    } else {
        Step::Act(remedy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(slug: &str) -> Product<'static> {
        Product {
            plan: crate::jetpack::plan_of_slug(slug),
            ours: true,
        }
    }

    fn e(plan: &str, expect: Expect) -> Expectation<'_> {
        Expectation { plan, expect }
    }

    #[test]
    fn a_held_plan_is_found_in_any_spelling_or_under_a_higher_plan() {
        let row = e("premium", Expect::Holds);
        for slug in ["premium", "jetpack_premium_monthly", "jetpack_business"] {
            assert_eq!(judge(row, &[row], &[ours(slug)]), Finding::Fine, "{slug}");
        }
        assert_eq!(
            judge(row, &[row], &[ours("jetpack_personal")]),
            Finding::Missing
        );
        assert_eq!(judge(row, &[row], &[]), Finding::Missing);
        let mut theirs = ours("jetpack_premium");
        theirs.ours = false;
        assert_eq!(judge(row, &[row], &[theirs]), Finding::Missing);
        assert_eq!(
            judge(row, &[row], &[ours("jetpack_complete")]),
            Finding::Unmapped
        );
    }

    #[test]
    fn a_cancelled_plan_back_at_the_site_is_unexpected_unless_another_target_holds_it() {
        let gone = e("premium", Expect::Absent);
        assert_eq!(judge(gone, &[gone], &[]), Finding::Fine);
        assert_eq!(
            judge(gone, &[gone], &[ours("jetpack_premium")]),
            Finding::Unexpected
        );
        // Any plan of the family takes its place; a product beside it does not.
        assert_eq!(
            judge(gone, &[gone], &[ours("jetpack_business")]),
            Finding::Unexpected
        );
        assert_eq!(judge(gone, &[gone], &[ours("jetpack_scan")]), Finding::Fine);
        // Another live target on the same site holds a plan: the site's plan is theirs.
        let other = e("personal", Expect::Holds);
        let site = [gone, other];
        assert_eq!(
            judge(gone, &site, &[ours("jetpack_premium")]),
            Finding::Fine
        );
        // A standalone product another target holds does not explain a plan.
        let backup = e("jetpack-backup-daily", Expect::Holds);
        let site = [gone, backup];
        assert_eq!(
            judge(
                gone,
                &site,
                &[ours("jetpack_premium"), ours("jetpack_backup_daily")]
            ),
            Finding::Unexpected
        );
    }

    #[test]
    fn a_higher_plan_covers_a_lower_one_but_products_only_themselves() {
        assert!(covers("professional", "premium"));
        assert!(covers("premium", "premium"));
        assert!(!covers("personal", "premium"));
        assert!(!covers("professional", "jetpack-scan"));
        assert!(!covers("jetpack-backup-realtime", "jetpack-backup-daily"));
        assert!(covers("jetpack-scan", "jetpack-scan"));
    }

    #[test]
    fn a_remedy_fits_what_whmcs_says_of_the_target() {
        let provision = Some(Action::Provision);
        assert!(remedy_fits(Remedy::Provision, Some(true), provision));
        assert!(!remedy_fits(Remedy::Provision, Some(false), provision));
        assert!(!remedy_fits(Remedy::Provision, None, provision));
        assert!(remedy_fits(Remedy::Cancel, Some(false), provision));
        assert!(remedy_fits(Remedy::Cancel, None, provision));
        assert!(!remedy_fits(Remedy::Cancel, Some(true), provision));
        // A suspended target (its suspend cancelled the plan) intends none: a plan that came
        // back is cancelled by a suspend request, not a terminate.
        let suspend = Some(Action::Suspend);
        assert!(remedy_fits(Remedy::Cancel, Some(true), suspend));
        assert_eq!(
            remedy_request(Remedy::Cancel, suspend),
            RequestKind::Suspend
        );
        assert_eq!(
            remedy_request(Remedy::Cancel, provision),
            RequestKind::Terminate
        );
        assert!(intent_agrees(Expect::Absent, suspend, false));
        assert!(intent_agrees(Expect::Holds, suspend, false));
        assert!(intent_agrees(
            Expect::Absent,
            Some(Action::Unsuspend),
            false
        ));
        // A free site is nobody's cancelled plan.
        let gone = e("premium", Expect::Absent);
        assert_eq!(judge(gone, &[gone], &[ours("jetpack_free")]), Finding::Fine);
    }

    #[test]
    fn a_failed_change_of_intent_is_left_to_the_admin() {
        assert!(!intent_agrees(
            Expect::Holds,
            Some(Action::Terminate),
            false
        ));
        assert!(!intent_agrees(
            Expect::Absent,
            Some(Action::Provision),
            false
        ));
        assert!(!intent_agrees(Expect::Absent, Some(Action::Change), false));
        assert!(intent_agrees(Expect::Holds, Some(Action::Change), false));
        assert!(intent_agrees(
            Expect::Absent,
            Some(Action::Terminate),
            false
        ));
        assert!(intent_agrees(Expect::Holds, None, false));
        // A suspend that failed tried to cancel the plan (an unsuspend, to provision it
        // again): the watch still says what was there before it, and an admin has it.
        let suspend = Some(Action::Suspend);
        assert!(!intent_agrees(Expect::Holds, suspend, true));
        assert!(intent_agrees(Expect::Absent, suspend, true));
        assert!(!intent_agrees(
            Expect::Absent,
            Some(Action::Unsuspend),
            true
        ));
        assert!(intent_agrees(Expect::Holds, Some(Action::Unsuspend), true));
        assert!(intent_agrees(Expect::Holds, Some(Action::Change), true));
        assert!(settled_by_partner(
            Expect::Holds,
            suspend,
            true,
            Finding::Missing
        ));
        assert!(!settled_by_partner(
            Expect::Holds,
            suspend,
            false,
            Finding::Missing
        ));
        let terminate = Some(Action::Terminate);
        assert!(settled_by_partner(
            Expect::Holds,
            terminate,
            false,
            Finding::Missing
        ));
        assert!(!settled_by_partner(
            Expect::Holds,
            terminate,
            false,
            Finding::Fine
        ));
        assert!(!settled_by_partner(
            Expect::Holds,
            terminate,
            false,
            Finding::Unmapped
        ));
        assert!(!settled_by_partner(
            Expect::Absent,
            terminate,
            false,
            Finding::Missing
        ));
        assert!(!settled_by_partner(
            Expect::Holds,
            Some(Action::Provision),
            false,
            Finding::Missing
        ));
    }

    #[test]
    fn drift_is_confirmed_before_acting_and_bounded() {
        let fresh = Memory {
            seen: Finding::Fine,
            times: 0,
            drifts: 0,
        };
        assert_eq!(decide(Finding::Unexpected, fresh, false), Step::Confirm);
        let once = Memory {
            seen: Finding::Unexpected,
            times: 1,
            ..fresh
        };
        assert_eq!(
            decide(Finding::Unexpected, once, false),
            Step::Act(Remedy::Cancel)
        );
        // Something else than last time starts over.
        assert_eq!(decide(Finding::Missing, once, true), Step::Confirm);
        let missing = Memory {
            seen: Finding::Missing,
            ..once
        };
        assert_eq!(decide(Finding::Missing, missing, false), Step::Report);
        assert_eq!(
            decide(Finding::Missing, missing, true),
            Step::Act(Remedy::Provision)
        );
        let reported = Memory {
            times: 2,
            ..missing
        };
        assert_eq!(decide(Finding::Missing, reported, false), Step::Quiet);
        let fought = Memory {
            drifts: MAX_DRIFTS,
            ..once
        };
        assert_eq!(decide(Finding::Unexpected, fought, false), Step::GiveUp);
        assert_eq!(decide(Finding::Fine, fought, false), Step::Fine);
        let unmapped = Memory {
            seen: Finding::Unmapped,
            ..once
        };
        assert_eq!(decide(Finding::Unmapped, unmapped, true), Step::Report);
    }
}
