//! When to provision a manual-setup order: the product's (or addon's) module setting *When to
//! provision a manual-setup order* (configoption8), for products WHMCS does not set up itself
//! ("Do not automatically setup", `tblproducts.autosetup` or `tbladdons.autoactivate` empty).
//! The one list of its values, what each waits for, and the words the module's drop-down and
//! the doctor show. The adoption scan (`store::adoption::kind`) and the PHP hooks (through
//! `catalogue.json`) both judge an order by [`ManualSetup::waits_for`]. A leaf.

/// The module setting that holds it (`tblproducts.configoption8`; an addon's
/// `tblmodule_configuration` row of that `setting_name`).
pub const SETTING: &str = "configoption8";

/// What a manual-setup order's target waits for before the hooks and the scan record its
/// provision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManualSetup {
    /// Its invoice is paid, or its order accepted, whichever comes first (`paid`; also `''`,
    /// what every product saved before the setting holds: the rule before the setting).
    Paid,
    /// An admin accepts its order (`accepted`; fraud review): a paid invoice alone does not
    /// count.
    Accepted,
    /// Nothing: only an admin's Create provisions it (`create`; never adopted).
    Create,
}

/// What happened to an order that may let its targets be provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// The order was accepted (`tblorders.status` = `Active`; WHMCS's AcceptOrder).
    Accepted,
    /// The order's invoice was paid (`tblinvoices.status` = `Paid`).
    Paid,
}

impl ManualSetup {
    /// Every value, in the drop-down's order (the first is the default).
    pub const ALL: [ManualSetup; 3] = [
        ManualSetup::Paid,
        ManualSetup::Accepted,
        ManualSetup::Create,
    ];

    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            ManualSetup::Paid => "paid",
            ManualSetup::Accepted => "accepted",
            ManualSetup::Create => "create",
        }
    }

    /// The stored values that mean it: `''` (products saved before the setting existed) means
    /// [`ManualSetup::Paid`].
    pub fn stored(self) -> &'static [&'static str] {
        match self {
            ManualSetup::Paid => &["", "paid"],
            ManualSetup::Accepted => &["accepted"],
            ManualSetup::Create => &["create"],
        }
    }

    /// The stored setting read as WHMCS's database compares it (case and trailing spaces
    /// ignored); None for a value that is not one of [`ManualSetup::stored`], which the scan
    /// and the hooks never provision (as [`ManualSetup::Create`]) and the doctor reports.
    pub fn parse(setting: &str) -> Option<ManualSetup> {
        let setting = setting.trim_end();
        ManualSetup::ALL
            .into_iter()
            .find(|m| m.stored().iter().any(|s| s.eq_ignore_ascii_case(setting)))
    }

    /// Whether this event lets the target be provisioned.
    pub fn waits_for(self, event: OrderEvent) -> bool {
        match (self, event) {
            (ManualSetup::Paid, _) => true,
            (ManualSetup::Accepted, OrderEvent::Accepted) => true,
            (ManualSetup::Accepted, OrderEvent::Paid) | (ManualSetup::Create, _) => false,
        }
    }

    /// The stored values (`''` included) whose targets this event lets be provisioned.
    pub fn stored_for(event: OrderEvent) -> Vec<&'static str> {
        ManualSetup::ALL
            .into_iter()
            .filter(|m| m.waits_for(event))
            .flat_map(|m| m.stored().iter().copied())
            .collect()
    }

    /// The drop-down's words.
    pub fn label(self) -> &'static str {
        match self {
            ManualSetup::Paid => {
                "When its invoice is paid (or its order accepted, if that comes first)"
            }
            ManualSetup::Accepted => "When an admin accepts the order (fraud review)",
            ManualSetup::Create => "Only when an admin clicks Create",
        }
    }

    /// What it means, for the doctor.
    pub fn describe(self) -> &'static str {
        match self {
            ManualSetup::Paid => {
                "a manual-setup order is provisioned once its invoice is paid or its order \
                 accepted"
            }
            ManualSetup::Accepted => {
                "a manual-setup order is provisioned once an admin accepts it (a paid invoice \
                 alone does not)"
            }
            ManualSetup::Create => {
                "a manual-setup order is provisioned only when an admin clicks Create"
            }
        }
    }
}

impl OrderEvent {
    /// Both events.
    pub const ALL: [OrderEvent; 2] = [OrderEvent::Accepted, OrderEvent::Paid];

    /// Its name in `catalogue.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEvent::Accepted => "accepted",
            OrderEvent::Paid => "paid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_setting_keeps_the_rule_before_the_setting() {
        assert_eq!(ManualSetup::parse(""), Some(ManualSetup::Paid));
        assert_eq!(ManualSetup::parse("PAID "), Some(ManualSetup::Paid));
        assert_eq!(ManualSetup::parse("accepted"), Some(ManualSetup::Accepted));
        assert_eq!(ManualSetup::parse("create"), Some(ManualSetup::Create));
        assert_eq!(ManualSetup::parse("on"), None);
    }

    #[test]
    fn each_value_waits_for_its_events() {
        assert_eq!(
            ManualSetup::stored_for(OrderEvent::Accepted),
            ["", "paid", "accepted"]
        );
        assert_eq!(ManualSetup::stored_for(OrderEvent::Paid), ["", "paid"]);
        assert!(
            OrderEvent::ALL
                .iter()
                .all(|e| !ManualSetup::Create.waits_for(*e))
        );
    }
}
