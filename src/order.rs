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

/// Interprets the rows; any problem an admin must fix becomes a [`BadInput`]. The texts are
/// `rules.json`'s, which the PHP module uses too.
pub fn read_order(service: &ServiceRow, fields: &[FieldRow]) -> Result<Order, BadInput> {
    let texts = &rules::rules().messages;
    let limits = &rules::rules().limits;
    let sid = service.service_id;
    let bad = |message: String, details: Option<DetailsField>| BadInput {
        message: format!("JETPACK MODULE: Service ID: {sid} - {message}"),
        details,
        client_id: service.client_id,
    };
    let Some(product) = service.product.as_ref() else {
        let product_id = service.product_id.to_string();
        return Err(bad(
            render(&texts.product_missing, &[("product_id", &product_id)]),
            None,
        ));
    };
    let pname = quote(&product.name);
    if !product.server_type.eq_ignore_ascii_case(MODULE_NAME) {
        let vars = [
            ("product", pname.as_str()),
            ("module", MODULE_NAME),
            ("value", &quote(&product.server_type)),
        ];
        return Err(bad(render(&texts.wrong_module, &vars), None));
    }
    let find = |key: &str| -> Result<Found<'_>, String> {
        let mut ids: Vec<u32> = fields
            .iter()
            .filter(|f| field_key(&f.field_name) == key)
            .map(|f| f.field_id)
            .collect();
        ids.dedup();
        match ids.as_slice() {
            [] => Err(render(
                &texts.no_field,
                &[("product", &pname), ("field", key)],
            )),
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
            many => Err(render(
                &texts.many_fields,
                &[
                    ("product", &pname),
                    ("count", &many.len().to_string()),
                    ("field", key),
                ],
            )),
        }
    };
    let details = find(FIELD_DETAILS).map_err(|m| bad(m, None))?;
    let details = DetailsField {
        field_id: details.field_id,
        value_id: details.value_id,
    };
    let fail = |m: String| bad(m, Some(details));
    let site_raw = find(FIELD_SITE_URL).map_err(fail)?;
    let user_raw = find(FIELD_LOCAL_USER).map_err(fail)?;
    let plan_raw = find(FIELD_PLAN).map_err(fail)?;

    let site_value = field_value(site_raw.value.unwrap_or(""));
    let site = SiteUrl::parse(site_value).map_err(|e| {
        let vars = [
            ("field", FIELD_SITE_URL),
            ("value", &quote(site_value)),
            ("problem", &e.to_string()),
        ];
        fail(render(&texts.bad_site_url, &vars))
    })?;
    let local_user = field_value(user_raw.value.unwrap_or("")).trim().to_owned();
    let user_field = [("field", FIELD_LOCAL_USER)];
    if local_user.is_empty() {
        return Err(fail(render(&texts.local_user_empty, &user_field)));
    }
    if local_user.contains(['<', '>']) {
        return Err(fail(render(&texts.local_user_markup, &user_field)));
    }
    let max_user = limits.local_user_max_chars;
    if local_user.chars().count() > max_user {
        let vars = [("field", FIELD_LOCAL_USER), ("max", &max_user.to_string())];
        return Err(fail(render(&texts.local_user_too_long, &vars)));
    }
    let plan_value = field_value(plan_raw.value.unwrap_or(""));
    let plan = Plan::parse(plan_value).ok_or_else(|| {
        let value = quote(plan_value.trim());
        let plans = ALLOWED_PLANS.join(", ");
        fail(render(
            &texts.bad_plan,
            &[("value", &value), ("plans", &plans)],
        ))
    })?;
    let client_id = product.partner_client_id.trim();
    let secret = product.partner_client_secret.trim();
    if client_id.is_empty() || secret.is_empty() {
        return Err(fail(render(&texts.no_credentials, &[("product", &pname)])));
    }
    Ok(Order {
        service_id: sid,
        client_id: service.client_id,
        product_name: product.name.clone(),
        credentials: Credentials {
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
        },
        plan,
        site,
        local_user,
        details,
        status: service.status.clone(),
    })
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
