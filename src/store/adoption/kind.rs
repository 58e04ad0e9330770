//! The two kinds of adoption target, services and addons (docs/addons.md), and everything
//! that differs between them in the worker's own tables: each adoption path (discovery, the
//! window, the re-check, marks, the sweep's requests) is written once over a [`Kind`], which
//! names its tables and columns. The WHMCS statements that differ by kind sit with their path
//! (`discover`, `window`, `recheck`), chosen by [`Kind::pick`].

use sqlx::MySql;
use sqlx::query_builder::Separated;

use crate::domain::{Action, AddonId, ServiceId, Target};
use crate::manual_setup::{ManualSetup, OrderEvent, SETTING};

/// Which kind of target (and so which candidates, marks and watermarks) a statement is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// Services (tblhosting): `mod_jetpack_adoption_candidates`, `mod_jetpack_adoption_marks`,
    /// `mod_jetpack_adoption_watermarks` (one row per Jetpack product).
    Service,
    /// Addons (tblhostingaddons): `mod_jetpack_adoption_addon_candidates`,
    /// `mod_jetpack_adoption_addon_marks`, `mod_jetpack_adoption_addon_watermark` (one row).
    Addon,
}

/// The scope of the addons' one watermark (`mod_jetpack_adoption_addon_watermark.id`): the
/// addons are read as one range, whatever their addon.
pub(super) const ADDON_SCOPE: u32 = 1;

/// An order (`o`) that is neither Fraud nor Cancelled.
const ORDER_OPEN: &str = "o.status NOT IN ('Fraud', 'Cancelled')";

/// What each [`OrderEvent`] looks like in WHMCS's tables: the order accepted (`o`), its invoice
/// (`i`) paid.
fn happened(event: OrderEvent) -> &'static str {
    match event {
        OrderEvent::Accepted => "o.status = 'Active'",
        OrderEvent::Paid => "i.status = 'Paid'",
    }
}

/// Whether the events that happened let a target with this setting be provisioned: one branch
/// per stored value, the setting read once (`CASE`, compared as the column's collation
/// compares: case and trailing spaces ignored, as `ManualSetup::parse`); a value the module
/// does not offer, never.
fn provisioned(setting: &str) -> String {
    let mut branches = String::new();
    for m in ManualSetup::ALL {
        let events: Vec<&str> = OrderEvent::ALL
            .into_iter()
            .filter(|e| m.waits_for(*e))
            .map(happened)
            .collect();
        let when = if events.is_empty() {
            "0".to_owned()
        } else {
            format!("({})", events.join(" OR "))
        };
        for value in m.stored() {
            branches.push_str(&format!(" WHEN '{value}' THEN {when}"));
        }
    }
    format!("CASE {setting}{branches} ELSE 0 END")
}

impl Kind {
    /// Both kinds, in the order every pass takes them: services, then addons.
    pub(super) const ALL: [Kind; 2] = [Kind::Service, Kind::Addon];

    /// The kind of a target.
    pub(super) fn of(target: Target) -> Kind {
        match target {
            Target::Service(_) => Kind::Service,
            Target::Addon { .. } => Kind::Addon,
        }
    }

    /// The service's or the addon's value of a per-kind pair.
    pub(super) fn pick<T>(self, [service, addon]: [T; 2]) -> T {
        match self {
            Kind::Service => service,
            Kind::Addon => addon,
        }
    }

    /// The candidates' table.
    pub(super) fn candidates(self) -> &'static str {
        self.pick([
            "mod_jetpack_adoption_candidates",
            "mod_jetpack_adoption_addon_candidates",
        ])
    }

    /// The marks' table (primary key: the target's id and the action).
    pub(super) fn marks(self) -> &'static str {
        self.pick([
            "mod_jetpack_adoption_marks",
            "mod_jetpack_adoption_addon_marks",
        ])
    }

    /// The candidates' (and marks') id column: the service's or the addon's id.
    pub(super) fn id_column(self) -> &'static str {
        self.pick(["service_id", "addon_id"])
    }

    /// The columns a candidate or a mark stores its target in ([`Kind::push_target`] binds
    /// them): the id, then an addon's parent service.
    pub(super) fn target_columns(self) -> &'static str {
        self.pick(["service_id", "addon_id, service_id"])
    }

    /// Binds a target's [`Kind::target_columns`].
    pub(super) fn push_target(self, b: &mut Separated<'_, MySql, &'static str>, target: Target) {
        b.push_bind(target.entity_id());
        if self == Kind::Addon {
            b.push_bind(target.service());
        }
    }

    /// The `addon_id` of a request for the target of the mark `m`.
    pub(super) fn request_addon_of_mark(self) -> &'static str {
        self.pick(["0", "m.addon_id"])
    }

    /// The watermarks' table, its scope column (a product; the addons' one row) and its
    /// position column (the highest id examined).
    pub(super) fn watermarks(self) -> [&'static str; 3] {
        self.pick([
            [
                "mod_jetpack_adoption_watermarks",
                "product_id",
                "last_service_id",
            ],
            [
                "mod_jetpack_adoption_addon_watermark",
                "id",
                "last_addon_id",
            ],
        ])
    }

    /// What discovery and the window read separately: one part per Jetpack product for
    /// services (through tblhosting's `packageid` index), one range for addons.
    pub(super) fn scopes(self, products: &[u32]) -> Vec<u32> {
        match self {
            Kind::Service => products.to_vec(),
            Kind::Addon => vec![ADDON_SCOPE],
        }
    }

    /// What makes a Pending target qualify for adoption (0 without its product or addon, or
    /// its order): its product (`p`) or addon (`d`) set to "Do not automatically setup"
    /// (`autosetup`, `autoactivate` empty), its order (`o`) neither Fraud nor Cancelled, and
    /// an event its setting *When to provision a manual-setup order* waits for
    /// ([`ManualSetup::waits_for`]): the order accepted, or its invoice (`i`) paid. One copy for
    /// the re-check and discovery (which adopts a qualifying one from its page); lib/Hooks.php
    /// decides the same in PHP from catalogue.json (checked by the tests).
    pub(super) fn qualifies(self) -> String {
        let manual = self.pick(["p.autosetup", "d.autoactivate"]);
        format!(
            "COALESCE({manual} = '' AND {ORDER_OPEN} AND {}, 0)",
            provisioned(&self.setting())
        )
    }

    /// The setting *When to provision a manual-setup order* of the product `p`, or of the addon
    /// `d` (its tblmodule_configuration row, by the unique key; a missing row reads as empty).
    fn setting(self) -> String {
        match self {
            Kind::Service => format!("COALESCE(p.{SETTING}, '')"),
            Kind::Addon => format!(
                "COALESCE((SELECT ms.value FROM tblmodule_configuration ms
                   WHERE ms.entity_type = 'addon' AND ms.entity_id = d.id
                   AND ms.setting_name = '{SETTING}'), '')"
            ),
        }
    }

    /// An expression true when the target whose id is `id` was marked for its provision (by
    /// primary key).
    pub(super) fn marked(self, id: &str) -> String {
        let (marks, column) = (self.marks(), self.id_column());
        let provision = Action::Provision.as_str();
        format!(
            "EXISTS (SELECT 1 FROM {marks} m WHERE m.{column} = {id} AND m.action = '{provision}')"
        )
    }

    /// An expression true when the target whose id is `id` is a candidate already or was
    /// marked for its provision: both by primary key.
    pub(super) fn known(self, id: &str) -> String {
        let (candidates, column) = (self.candidates(), self.id_column());
        format!(
            "EXISTS (SELECT 1 FROM {candidates} c WHERE c.{column} = {id}) OR {}",
            self.marked(id)
        )
    }

    /// The target of this kind with this id (an addon's parent as WHMCS names it now).
    pub(super) fn target(self, id: u32, parent: ServiceId) -> Target {
        match self {
            Kind::Service => Target::Service(ServiceId(id)),
            Kind::Addon => Target::Addon {
                addon: AddonId(id),
                service: parent,
            },
        }
    }
}

/// An id as read from a WHMCS column (signed there; never negative).
pub(super) fn whmcs_id(value: i64) -> u32 {
    u32::try_from(value.unsigned_abs()).unwrap_or(0)
}

/// How long the order `orderid` names has waited, in seconds by the server's clock (as WHMCS
/// writes `tblorders.date`); NULL without an order.
pub(super) fn waited(orderid: &str) -> String {
    format!("(SELECT TIMESTAMPDIFF(SECOND, o.date, NOW()) FROM tblorders o WHERE o.id = {orderid})")
}

impl crate::store::Store {
    /// The kinds this WHMCS has: addons only with module addons ([`Store::has_addons`]; WHMCS
    /// 7.2 on).
    ///
    /// [`Store::has_addons`]: crate::store::Store::has_addons
    pub(super) fn kinds(&self) -> impl Iterator<Item = Kind> + use<> {
        let addons = self.has_addons;
        Kind::ALL
            .into_iter()
            .filter(move |k| *k == Kind::Service || addons)
    }
}
