//! Reads an order as WHMCS stores it (service, product, custom fields) into what the partner
//! API needs, or into a `JETPACK MODULE: <what to fix>` message. Pure: the `store` fetches the
//! rows, this module only interprets them with WHMCS's own rules (`key|Friendly Name` field
//! names, values cut at the first `|`, the lowest value row wins when there are duplicates),
//! and with the field names, limits and message texts of `rules.json`, which the PHP module
//! checks the same input with.

use secrecy::SecretString;

use crate::domain::{ALLOWED_PLANS, Plan, ServiceId, SiteUrl};
use crate::jetpack::Credentials;
use crate::rules::{self, render};

// The custom field names the module needs (exactly as the original module named them) and
// the module name, from `rules.json`.
pub use crate::rules::{FIELD_DETAILS, FIELD_LOCAL_USER, FIELD_PLAN, FIELD_SITE_URL, MODULE_NAME};

/// `tblhosting` joined with its `tblproducts` row (if the product still exists).
#[derive(Clone, Debug)]
pub struct ServiceRow {
    /// tblhosting.id
    pub service_id: ServiceId,
    /// tblhosting.userid (the WHMCS client).
    pub client_id: u32,
    /// tblhosting.packageid
    pub product_id: u32,
    /// tblhosting.domainstatus
    pub status: String,
    /// The product, when it exists.
    pub product: Option<ProductRow>,
}

/// The columns of `tblproducts` the worker reads.
#[derive(Clone)]
pub struct ProductRow {
    /// tblproducts.name
    pub name: String,
    /// tblproducts.servertype
    pub server_type: String,
    /// configoption1: partner client id.
    pub partner_client_id: String,
    /// configoption2: partner client secret.
    pub partner_client_secret: String,
}

impl std::fmt::Debug for ProductRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductRow")
            .field("name", &self.name)
            .field("server_type", &self.server_type)
            .finish_non_exhaustive()
    }
}

/// One product custom field and (if any) one of this service's value rows for it.
#[derive(Clone, Debug)]
pub struct FieldRow {
    /// tblcustomfields.id
    pub field_id: u32,
    /// tblcustomfields.fieldname (may be `key|Friendly Name`).
    pub field_name: String,
    /// tblcustomfieldsvalues.id for this service, if a value row exists.
    pub value_id: Option<u32>,
    /// tblcustomfieldsvalues.value
    pub value: Option<String>,
}

/// Where this service's `jetpack_provisioning_details` lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailsField {
    /// tblcustomfields.id of the product's field.
    pub field_id: u32,
    /// The lowest tblcustomfieldsvalues.id for this service, or None to insert one.
    pub value_id: Option<u32>,
}

/// Everything needed to provision or cancel one service.
#[derive(Clone, Debug)]
pub struct Order {
    /// tblhosting.id
    pub service_id: ServiceId,
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
    /// The WordPress user on the site.
    pub local_user: String,
    /// Where to write the outcome.
    pub details: DetailsField,
    /// tblhosting.domainstatus when read.
    pub status: String,
}

/// What a terminate needs, and no more: the cancel call sends only the site, the partner
/// account's credentials and (for standalone products) the plan.
#[derive(Clone, Debug)]
pub struct CancelOrder {
    /// tblhosting.id
    pub service_id: ServiceId,
    /// The WHMCS client (for activity-log rows).
    pub client_id: u32,
    /// Partner account.
    pub credentials: Credentials,
    /// The plan, when the Plan field holds an allowed one; `None` (an empty, unknown or
    /// missing legacy plan) cancels the site's plans without naming one.
    pub plan: Option<Plan>,
    /// Normalised site URL.
    pub site: SiteUrl,
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

/// The rows of one service, checked step by step; every problem becomes a [`BadInput`].
struct Reader<'a> {
    service: &'a ServiceRow,
    product: &'a ProductRow,
    fields: &'a [FieldRow],
    /// The product's name, quoted for messages.
    pname: String,
    details: Option<DetailsField>,
}

impl<'a> Reader<'a> {
    /// Checks the product (it exists and uses this module) and finds the details field.
    fn new(
        service: &'a ServiceRow,
        fields: &'a [FieldRow],
    ) -> Result<(Reader<'a>, DetailsField), BadInput> {
        let texts = &rules::rules().messages;
        let Some(product) = service.product.as_ref() else {
            let product_id = service.product_id.to_string();
            let vars = [("product_id", product_id.as_str())];
            return Err(bad(service, render(&texts.product_missing, &vars), None));
        };
        let pname = quote(&product.name);
        if !product.server_type.eq_ignore_ascii_case(MODULE_NAME) {
            let vars = [
                ("product", pname.as_str()),
                ("module", MODULE_NAME),
                ("value", &quote(&product.server_type)),
            ];
            return Err(bad(service, render(&texts.wrong_module, &vars), None));
        }
        let mut reader = Reader {
            service,
            product,
            fields,
            pname,
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

    /// The one field named `key` and this service's lowest value row for it.
    fn find(&self, key: &str) -> Result<Found<'a>, BadInput> {
        let texts = &rules::rules().messages;
        let fields = self.fields;
        let mut ids: Vec<u32> = fields
            .iter()
            .filter(|f| field_key(&f.field_name) == key)
            .map(|f| f.field_id)
            .collect();
        ids.dedup();
        match ids.as_slice() {
            [] => {
                let vars = [("product", self.pname.as_str()), ("field", key)];
                Err(self.fail(render(&texts.no_field, &vars)))
            }
            [id] => {
                let first_value = fields
                    .iter()
                    .filter(|f| f.field_id == *id && f.value_id.is_some())
                    .min_by_key(|f| f.value_id);
                Ok(Found {
                    field_id: *id,
                    value_id: first_value.and_then(|f| f.value_id),
                    value: first_value.and_then(|f| f.value.as_deref()),
                })
            }
            many => {
                let count = many.len().to_string();
                let vars = [
                    ("product", self.pname.as_str()),
                    ("count", &count),
                    ("field", key),
                ];
                Err(self.fail(render(&texts.many_fields, &vars)))
            }
        }
    }

    fn site(&self, found: &Found<'_>) -> Result<SiteUrl, BadInput> {
        let site_value = field_value(found.value.unwrap_or(""));
        SiteUrl::parse(site_value).map_err(|e| {
            let vars = [
                ("field", FIELD_SITE_URL),
                ("value", &quote(site_value)),
                ("problem", &e.to_string()),
            ];
            self.fail(render(&rules::rules().messages.bad_site_url, &vars))
        })
    }

    fn local_user(&self, found: &Found<'_>) -> Result<String, BadInput> {
        let texts = &rules::rules().messages;
        let local_user = field_value(found.value.unwrap_or("")).trim().to_owned();
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

    fn plan(&self, found: &Found<'_>) -> Result<Plan, BadInput> {
        let plan_value = field_value(found.value.unwrap_or(""));
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
            let vars = [("product", self.pname.as_str())];
            return Err(self.fail(render(&rules::rules().messages.no_credentials, &vars)));
        }
        Ok(Credentials {
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
        })
    }
}

fn bad(service: &ServiceRow, message: String, details: Option<DetailsField>) -> BadInput {
    BadInput {
        message: format!(
            "JETPACK MODULE: Service ID: {} - {message}",
            service.service_id
        ),
        details,
        client_id: service.client_id,
    }
}

/// Interprets the rows for a provision; any problem an admin must fix becomes a
/// [`BadInput`]. The texts are `rules.json`'s, which the PHP module uses too, and so is the
/// order of the checks.
pub fn read_order(service: &ServiceRow, fields: &[FieldRow]) -> Result<Order, BadInput> {
    let (r, details) = Reader::new(service, fields)?;
    let site_raw = r.find(FIELD_SITE_URL)?;
    let user_raw = r.find(FIELD_LOCAL_USER)?;
    let plan_raw = r.find(FIELD_PLAN)?;
    let site = r.site(&site_raw)?;
    let local_user = r.local_user(&user_raw)?;
    let plan = r.plan(&plan_raw)?;
    let credentials = r.credentials()?;
    Ok(Order {
        service_id: service.service_id,
        client_id: service.client_id,
        product_name: r.product.name.clone(),
        credentials,
        plan,
        site,
        local_user,
        details,
        status: service.status.clone(),
    })
}

/// Interprets the rows for a terminate: only what the cancel call uses, checked in the same
/// order as the PHP module's `Order::load` for a terminate. The Site URL and the credentials must be there; the Local User is not
/// read; a Plan field that is missing, doubled, empty or not an allowed plan (a legacy order)
/// means the cancel names no plan, which cancels the site's plans.
pub fn read_cancel(service: &ServiceRow, fields: &[FieldRow]) -> Result<CancelOrder, BadInput> {
    let (r, details) = Reader::new(service, fields)?;
    let site_raw = r.find(FIELD_SITE_URL)?;
    let site = r.site(&site_raw)?;
    let plan = r.find(FIELD_PLAN).ok().and_then(|f| r.plan(&f).ok());
    let credentials = r.credentials()?;
    Ok(CancelOrder {
        service_id: service.service_id,
        client_id: service.client_id,
        credentials,
        plan,
        site,
        details: Some(details),
        service_gone: false,
    })
}

/// A terminate of a service whose tblhosting row is gone (deleted in WHMCS): it cancels what
/// the ledger holds (`held_site` is one of its sites, as sent) with the credentials of the
/// product the ledger recorded. None when that product has no credentials or the site does
/// not parse.
pub fn read_gone_cancel(
    service_id: ServiceId,
    product: &ProductRow,
    held_site: &str,
) -> Option<CancelOrder> {
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
    Some(CancelOrder {
        service_id,
        client_id: 0,
        credentials: Credentials {
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
        },
        plan: None,
        site: SiteUrl::parse(held_site).ok()?,
        details: None,
        service_gone: true,
    })
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
