//! Reads an order as WHMCS stores it (service, product, custom fields) into what the partner
//! API needs, or into a `JETPACK MODULE: <what to fix>` message. Pure: the `store` fetches the
//! rows, this module only interprets them with WHMCS's own rules (`key|Friendly Name` field
//! names, values cut at the first `|`, the lowest value row wins when there are duplicates),
//! and with the field names, limits and message texts of `rules.json`, which the PHP module
//! checks the same input with. A standalone product and a product addon are read with the
//! same rules (docs/addons.md): an addon's Site URL defaults to its parent service's domain,
//! the Local User and the plan fall back to module settings.

use secrecy::SecretString;

use crate::domain::{ALLOWED_PLANS, Plan, SiteUrl, Target};
use crate::jetpack::Credentials;
use crate::rules::{self, render};
use crate::store::{DetailsField, FieldRow, ProductRow, ServiceRow};

// The custom field names the module needs (exactly as the original module named them) and
// the module name, from `rules.json`.
pub use crate::rules::{FIELD_DETAILS, FIELD_LOCAL_USER, FIELD_PLAN, FIELD_SITE_URL, MODULE_NAME};

/// Everything needed to provision or cancel one service or addon.
#[derive(Clone, Debug)]
pub struct Order {
    /// The service or addon.
    pub target: Target,
    /// The WHMCS client (for activity-log rows).
    pub client_id: u32,
    /// Product name, for messages.
    pub product_name: String,
    /// Partner account.
    pub credentials: Credentials,
    /// Validated plan.
    pub plan: Plan,
    /// Normalised site URL.
    pub site: SiteUrl,
    /// The site is the one the ledger holds: the Site URL field was empty (a product move to
    /// a product whose fields are named differently carries no value over).
    pub site_from_ledger: bool,
    /// The WordPress user on the site.
    pub local_user: String,
    /// Where to write the outcome.
    pub details: DetailsField,
    /// tblhosting.domainstatus (tblhostingaddons.status) when read.
    pub status: String,
}

/// What a terminate needs, and no more: the cancel call sends only the site, the partner
/// account's credentials and (for standalone products) the plan.
#[derive(Clone, Debug)]
pub struct CancelOrder {
    /// The service or addon.
    pub target: Target,
    /// The WHMCS client (for activity-log rows).
    pub client_id: u32,
    /// Partner account.
    pub credentials: Credentials,
    /// The plan, when the Plan field holds an allowed one; `None` (an empty, unknown or
    /// missing legacy plan) cancels the site's plans without naming one.
    pub plan: Option<Plan>,
    /// Normalised site URL.
    pub site: SiteUrl,
    /// The site is one the ledger holds, the Site URL field being empty (see [`Order`]).
    pub site_from_ledger: bool,
    /// Where to write the outcome; None when the service row is gone.
    pub details: Option<DetailsField>,
    /// The service was deleted from tblhosting: only what the ledger holds is cancelled,
    /// and nothing is written to the service.
    pub service_gone: bool,
}

/// Input an admin has to fix; `message` starts with `JETPACK MODULE:`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadInput {
    /// The full message, shown in details, activity log and job row.
    pub message: String,
    /// Where to write it, when the details field itself is usable.
    pub details: Option<DetailsField>,
    /// The WHMCS client, for the activity log (0 when the service is unknown).
    pub client_id: u32,
}

/// The key WHMCS uses for a field name: the part before the first `|`, trimmed.
pub fn field_key(field_name: &str) -> &str {
    field_name.split('|').next().unwrap_or("").trim()
}

/// The value WHMCS hands to modules: cut at the first `|`.
pub fn field_value(value: &str) -> &str {
    value.split('|').next().unwrap_or("")
}

/// Makes a customer-supplied value safe to quote in a message: no markup, no control
/// characters, at most `rules.json`'s `quote_max_chars` (80) characters.
pub fn quote(value: &str) -> String {
    let max = rules::rules().limits.quote_max_chars;
    let clean: String = value
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '<' | '>' | '"' | '`' => '\'',
            c => c,
        })
        .collect();
    if clean.chars().count() > max {
        format!("'{}…'", clean.chars().take(max).collect::<String>())
    } else {
        format!("'{clean}'")
    }
}

struct Found<'a> {
    field_id: u32,
    value_id: Option<u32>,
    value: Option<&'a str>,
}

impl Found<'_> {
    /// The value WHMCS hands to modules, trimmed; None when empty.
    fn given(&self) -> Option<&str> {
        Some(field_value(self.value.unwrap_or("")).trim()).filter(|v| !v.is_empty())
    }
}

/// The message texts for one kind of target: a product's or an addon's.
struct Texts {
    missing_field: &'static str,
    many_fields: &'static str,
    no_credentials: &'static str,
    /// The placeholder the texts name the product or addon by.
    name_var: &'static str,
}

fn texts_for(target: Target) -> Texts {
    let m = &rules::rules().messages;
    match target {
        Target::Service(_) => Texts {
            missing_field: &m.no_field,
            many_fields: &m.many_fields,
            no_credentials: &m.no_credentials,
            name_var: "product",
        },
        Target::Addon { .. } => Texts {
            missing_field: &m.addon_no_field,
            many_fields: &m.addon_many_fields,
            no_credentials: &m.addon_no_credentials,
            name_var: "addon",
        },
    }
}

/// The rows of one service or addon, checked step by step; every problem becomes a
/// [`BadInput`].
struct Reader<'a> {
    service: &'a ServiceRow,
    product: &'a ProductRow,
    fields: &'a [FieldRow],
    /// The product's (addon's) name, quoted for messages.
    pname: String,
    texts: Texts,
    details: Option<DetailsField>,
}

impl<'a> Reader<'a> {
    /// Checks the product or addon (it exists and uses this module; an addon's service is
    /// there) and finds the details field.
    fn new(
        service: &'a ServiceRow,
        fields: &'a [FieldRow],
    ) -> Result<(Reader<'a>, DetailsField), BadInput> {
        let product = checked_product(service)?;
        let mut reader = Reader {
            service,
            product,
            fields,
            pname: quote(&product.name),
            texts: texts_for(service.target),
            details: None,
        };
        let found = reader.find(FIELD_DETAILS)?;
        let details = DetailsField {
            field_id: found.field_id,
            value_id: found.value_id,
        };
        reader.details = Some(details);
        Ok((reader, details))
    }

    /// A problem, written to the details field once that is known.
    fn fail(&self, message: String) -> BadInput {
        bad(self.service, message, self.details)
    }

    /// The message for a field the product (addon) does not have.
    fn no_field(&self, key: &str) -> BadInput {
        let vars = [(self.texts.name_var, self.pname.as_str()), ("field", key)];
        self.fail(render(self.texts.missing_field, &vars))
    }

    /// The one field named `key` and this service's lowest value row for it.
    fn find(&self, key: &str) -> Result<Found<'a>, BadInput> {
        self.find_optional(key)?.ok_or_else(|| self.no_field(key))
    }

    /// Like [`Reader::find`], with None when there is no such field.
    fn find_optional(&self, key: &str) -> Result<Option<Found<'a>>, BadInput> {
        let fields = self.fields;
        let mut ids: Vec<u32> = fields
            .iter()
            .filter(|f| field_key(&f.field_name) == key)
            .map(|f| f.field_id)
            .collect();
        ids.dedup();
        match ids.as_slice() {
            [] => Ok(None),
            [id] => {
                let first_value = fields
                    .iter()
                    .filter(|f| f.field_id == *id && f.value_id.is_some())
                    .min_by_key(|f| f.value_id);
                Ok(Some(Found {
                    field_id: *id,
                    value_id: first_value.and_then(|f| f.value_id),
                    value: first_value.and_then(|f| f.value.as_deref()),
                }))
            }
            many => {
                let count = many.len().to_string();
                let vars = [
                    (self.texts.name_var, self.pname.as_str()),
                    ("count", &count),
                    ("field", key),
                ];
                Err(self.fail(render(self.texts.many_fields, &vars)))
            }
        }
    }

    /// The field `key`, which may be missing only when the module setting `fallback`
    /// stands in for it.
    fn field_or_setting(&self, key: &str, fallback: &str) -> Result<Option<Found<'a>>, BadInput> {
        let found = self.find_optional(key)?;
        if found.is_none() && fallback.trim().is_empty() {
            return Err(self.no_field(key));
        }
        Ok(found)
    }

    /// The Site URL field: a product must have one, an addon may go without.
    fn site_field(&self) -> Result<Option<Found<'a>>, BadInput> {
        let site = self.find_optional(FIELD_SITE_URL)?;
        if site.is_none() && matches!(self.service.target, Target::Service(_)) {
            return Err(self.no_field(FIELD_SITE_URL));
        }
        Ok(site)
    }

    /// The Site URL field's value; for an addon without one, its service's domain.
    fn site(&self, found: Option<&Found<'_>>) -> Result<SiteUrl, BadInput> {
        let given = found.and_then(Found::given);
        let site_value = match (given, &self.service.parent_domain) {
            (Some(v), _) => v,
            (None, Some(domain)) if !domain.trim().is_empty() => domain.trim(),
            (None, Some(_)) => return Err(self.no_site()),
            (None, None) => field_value(found.and_then(|f| f.value).unwrap_or("")),
        };
        SiteUrl::parse(site_value).map_err(|e| {
            let vars = [
                ("field", FIELD_SITE_URL),
                ("value", &quote(site_value)),
                ("problem", &e.to_string()),
            ];
            self.fail(render(&rules::rules().messages.bad_site_url, &vars))
        })
    }

    /// The Site URL, or, when a service's field is there but empty, the site the ledger holds
    /// for it (`held`: the sites as sent; one of them when `any`, else only when it holds
    /// exactly one). True when the ledger's site is used.
    fn site_or_held(
        &self,
        found: Option<&Found<'_>>,
        held: &[&str],
        any: bool,
    ) -> Result<(SiteUrl, bool), BadInput> {
        let empty = found.is_some_and(|f| f.given().is_none());
        let usable = match held {
            [one] => Some(*one),
            [first, ..] if any => Some(*first),
            _ => None,
        };
        if let (true, Target::Service(_), Some(site)) = (empty, self.service.target, usable)
            && let Ok(site) = SiteUrl::parse(site)
        {
            return Ok((site, true));
        }
        Ok((self.site(found)?, false))
    }

    fn no_site(&self) -> BadInput {
        let service = self.service.target.service().to_string();
        let vars = [("field", FIELD_SITE_URL), ("service_id", service.as_str())];
        self.fail(render(&rules::rules().messages.addon_no_site, &vars))
    }

    /// The Local User field's value, else the module setting's default.
    fn local_user(&self, found: Option<&Found<'_>>) -> Result<String, BadInput> {
        let texts = &rules::rules().messages;
        let default = self.product.default_local_user.trim();
        let local_user = match found.and_then(Found::given) {
            Some(v) => v.to_owned(),
            None => default.to_owned(),
        };
        let user_field = [("field", FIELD_LOCAL_USER)];
        if local_user.is_empty() {
            return Err(self.fail(render(&texts.local_user_empty, &user_field)));
        }
        if local_user.contains(['<', '>']) {
            return Err(self.fail(render(&texts.local_user_markup, &user_field)));
        }
        let max_user = rules::rules().limits.local_user_max_chars;
        if local_user.chars().count() > max_user {
            let vars = [("field", FIELD_LOCAL_USER), ("max", &max_user.to_string())];
            return Err(self.fail(render(&texts.local_user_too_long, &vars)));
        }
        Ok(local_user)
    }

    /// The module setting Plan when it names one, else the Plan field's value
    /// (docs/addons.md, "Which plan": an upgrade changes the product, and with it the
    /// setting, while WHMCS carries custom field values over unchanged).
    fn plan(&self, found: Option<&Found<'_>>) -> Result<Plan, BadInput> {
        let setting = self.product.plan_setting.trim();
        let plan_value = if setting.is_empty() {
            field_value(found.and_then(|f| f.value).unwrap_or(""))
        } else {
            setting
        };
        Plan::parse(plan_value).ok_or_else(|| {
            let value = quote(plan_value.trim());
            let plans = ALLOWED_PLANS.join(", ");
            let vars = [("value", value.as_str()), ("plans", &plans)];
            self.fail(render(&rules::rules().messages.bad_plan, &vars))
        })
    }

    fn credentials(&self) -> Result<Credentials, BadInput> {
        let client_id = self.product.partner_client_id.trim();
        let secret = self.product.partner_client_secret.trim();
        if client_id.is_empty() || secret.is_empty() {
            let vars = [(self.texts.name_var, self.pname.as_str())];
            return Err(self.fail(render(self.texts.no_credentials, &vars)));
        }
        Ok(Credentials {
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
        })
    }
}

/// The product (addon) of the rows, checked: it exists, uses this module, and an addon's
/// service is there.
fn checked_product(service: &ServiceRow) -> Result<&ProductRow, BadInput> {
    let texts = &rules::rules().messages;
    let is_addon = matches!(service.target, Target::Addon { .. });
    let Some(product) = service.product.as_ref() else {
        let id = service.product_id.to_string();
        let message = if is_addon {
            render(&texts.addon_definition_missing, &[("addon_def_id", &id)])
        } else {
            render(&texts.product_missing, &[("product_id", &id)])
        };
        return Err(bad(service, message, None));
    };
    if !product.server_type.eq_ignore_ascii_case(MODULE_NAME) {
        let (template, var) = if is_addon {
            (&texts.addon_wrong_module, "addon")
        } else {
            (&texts.wrong_module, "product")
        };
        let vars = [
            (var, quote(&product.name)),
            ("module", MODULE_NAME.to_owned()),
            ("value", quote(&product.server_type)),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return Err(bad(service, render(template, &vars), None));
    }
    if is_addon && service.parent_domain.is_none() {
        let sid = service.target.service().to_string();
        let message = render(&texts.addon_no_parent, &[("service_id", &sid)]);
        return Err(bad(service, message, None));
    }
    Ok(product)
}

fn bad(service: &ServiceRow, message: String, details: Option<DetailsField>) -> BadInput {
    BadInput {
        message: format!("JETPACK MODULE: {} - {message}", service.target),
        details,
        client_id: service.client_id,
    }
}

/// Interprets the rows for a provision; any problem an admin must fix becomes a
/// [`BadInput`]. The texts are `rules.json`'s, which the PHP module uses too, and so is the
/// order of the checks: each field completely (the field, then its value) before the next,
/// Site URL, Local User, Plan, then the credentials.
pub fn read_order(service: &ServiceRow, fields: &[FieldRow]) -> Result<Order, BadInput> {
    read_order_held(service, fields, &[])
}

/// [`read_order`] for an action that reads the ledger (a change of plan, an unsuspend):
/// `held` are the sites the ledger holds for the target. When a service's Site URL field is
/// empty (after a move to a product whose fields are named differently WHMCS carries no value
/// over) and the ledger holds exactly one site, that site is the order's, and the plan is the
/// one the order names; [`Order::site_from_ledger`] says so.
pub fn read_order_held(
    service: &ServiceRow,
    fields: &[FieldRow],
    held: &[&str],
) -> Result<Order, BadInput> {
    let (r, details) = Reader::new(service, fields)?;
    let (site, site_from_ledger) = r.site_or_held(r.site_field()?.as_ref(), held, false)?;
    let user = r.field_or_setting(FIELD_LOCAL_USER, &r.product.default_local_user)?;
    let local_user = r.local_user(user.as_ref())?;
    let plan = r.field_or_setting(FIELD_PLAN, &r.product.plan_setting)?;
    let plan = r.plan(plan.as_ref())?;
    let credentials = r.credentials()?;
    Ok(Order {
        target: service.target,
        client_id: service.client_id,
        product_name: r.product.name.clone(),
        credentials,
        plan,
        site,
        site_from_ledger,
        local_user,
        details,
        status: service.status.clone(),
    })
}

/// Interprets the rows for a terminate: only what the cancel call uses, checked in the same
/// order as the PHP module's `OrderChecks::check` for a terminate. The Site URL (for an addon, or
/// its service's domain) and the credentials must be there; the Local User is not read; a
/// plan that is doubled, not named or not an allowed one (a legacy order) means the cancel
/// names no plan, which cancels the site's plans.
pub fn read_cancel(service: &ServiceRow, fields: &[FieldRow]) -> Result<CancelOrder, BadInput> {
    read_cancel_held(service, fields, &[])
}

/// [`read_cancel`] with the sites the ledger holds for the target (`held`, as sent): a
/// service's empty Site URL field (after a product move) is no reason to refuse when the
/// ledger holds a site, since a terminate cancels what the ledger holds.
pub fn read_cancel_held(
    service: &ServiceRow,
    fields: &[FieldRow],
    held: &[&str],
) -> Result<CancelOrder, BadInput> {
    let (r, details) = Reader::new(service, fields)?;
    let site_raw = r.site_field()?;
    let (site, site_from_ledger) = r.site_or_held(site_raw.as_ref(), held, true)?;
    let plan = match r.find_optional(FIELD_PLAN) {
        Ok(found) => r.plan(found.as_ref()).ok(),
        Err(_) => None,
    };
    let credentials = r.credentials()?;
    Ok(CancelOrder {
        target: service.target,
        client_id: service.client_id,
        credentials,
        plan,
        site,
        site_from_ledger,
        details: Some(details),
        service_gone: false,
    })
}

/// The partner account a product (addon) of this module names: its client id and secret.
/// None for a product of another module or without both.
pub fn partner_account(product: &ProductRow) -> Option<Credentials> {
    // A product moved to another module since holds that module's settings, not partner
    // credentials: they are never sent to the partner API.
    if !product.server_type.eq_ignore_ascii_case(MODULE_NAME) {
        return None;
    }
    let client_id = product.partner_client_id.trim();
    let secret = product.partner_client_secret.trim();
    if client_id.is_empty() || secret.is_empty() {
        return None;
    }
    Some(Credentials {
        client_id: client_id.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
    })
}

/// A terminate of a service whose tblhosting row is gone (deleted in WHMCS): it cancels what
/// the ledger holds (`held_site` is one of its sites, as sent) with the credentials of the
/// product the ledger recorded. None when that product has no credentials or the site does
/// not parse.
pub fn read_gone_cancel(
    target: Target,
    product: &ProductRow,
    held_site: &str,
) -> Option<CancelOrder> {
    Some(CancelOrder {
        target,
        client_id: 0,
        credentials: partner_account(product)?,
        plan: None,
        site: SiteUrl::parse(held_site).ok()?,
        site_from_ledger: false,
        details: None,
        service_gone: true,
    })
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;

#[path = "order_licence.rs"]
mod licence;
pub use licence::{LicenceOrder, attaches, is_product_slug, read_gone_licence, read_licence_order};

/// What a WHMCS suspend does to the target's plan: the product's (or addon's) module setting
/// *When WHMCS suspends the service* (configoption7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSuspend {
    /// The plan stays (`''`, products saved before the setting existed, and `keep`).
    KeepPlan,
    /// The plan is cancelled, and provided again on unsuspend (`cancel`).
    CancelPlan,
}

impl OnSuspend {
    /// The stored value of [`OnSuspend::CancelPlan`] (every other value keeps the plan).
    pub const CANCEL: &'static str = "cancel";

    /// The setting of the target's product (the plan is kept when the product is gone).
    pub fn of(service: &ServiceRow) -> OnSuspend {
        service.product.as_ref().map_or(OnSuspend::KeepPlan, |p| {
            OnSuspend::parse(&p.suspend_setting)
        })
    }

    /// The stored setting read (anything but `cancel` keeps the plan).
    pub fn parse(setting: &str) -> OnSuspend {
        if setting.trim() == OnSuspend::CANCEL {
            OnSuspend::CancelPlan
        } else {
            OnSuspend::KeepPlan
        }
    }

    /// What it means, for the doctor.
    pub fn describe(self) -> &'static str {
        match self {
            OnSuspend::KeepPlan => "the Jetpack plan is kept (and keeps costing you)",
            OnSuspend::CancelPlan => {
                "the Jetpack plan is cancelled, and provisioned again on unsuspend"
            }
        }
    }
}
