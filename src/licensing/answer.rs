//! Reading the Licensing API's successful answers: a License, a page of the portal's licence
//! list, the product families. Pure; an answer that does not have the shape is an error of
//! the boundary (an unusable 2xx), built by the caller.

use chrono::NaiveDateTime;
use serde_json::Value;

/// A licence as the API answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Licence {
    /// `license_key`: starts with the product slug.
    pub key: String,
    /// `issued_at` (UTC), when readable.
    pub issued_at: Option<NaiveDateTime>,
    /// `revoked_at` (UTC): set once revoked.
    pub revoked_at: Option<NaiveDateTime>,
}

/// One licence of the portal's list (`GET /licenses`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `license_key`.
    pub key: String,
    /// `product` (a slug).
    pub product: String,
    /// `issued_at` (UTC).
    pub issued_at: Option<NaiveDateTime>,
    /// Revoked.
    pub revoked: bool,
}

/// One product of a family (`GET /product-families`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Its slug (what `POST /license` takes).
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its family's name.
    pub family: String,
}

/// A time as the API writes it: `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()
}

fn time(v: &Value, key: &str) -> Option<NaiveDateTime> {
    v.get(key).and_then(Value::as_str).and_then(parse_time)
}

/// A License object; None without a key.
pub fn licence(body: &[u8]) -> Option<Licence> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let key = v.get("license_key")?.as_str()?.trim();
    if key.is_empty() {
        return None;
    }
    Some(Licence {
        key: key.to_owned(),
        issued_at: time(&v, "issued_at"),
        revoked_at: time(&v, "revoked_at"),
    })
}

/// A page of the portal's list; None without `items`.
pub fn listing(body: &[u8]) -> Option<Vec<Listed>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let items = v.get("items")?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|i| {
                Some(Listed {
                    key: i.get("license_key")?.as_str()?.to_owned(),
                    product: i
                        .get("product")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    issued_at: time(i, "issued_at"),
                    revoked: i.get("revoked_at").is_some_and(|r| !r.is_null()),
                })
            })
            .collect(),
    )
}

/// The products of every family; None unless the body is a list.
pub fn families(body: &[u8]) -> Option<Vec<Product>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    for family in v.as_array()? {
        let name = family
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for p in family
            .get("products")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(slug) = p.get("slug").and_then(Value::as_str) else {
                continue;
            };
            out.push(Product {
                slug: slug.to_owned(),
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(slug)
                    .to_owned(),
                family: name.to_owned(),
            });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_reads() {
        let body = br#"{"license_id":1,"license_key":"jetpack-anti-spam_xZjt","issued_at":"2020-09-08 16:14:58","revoked_at":null}"#;
        let l = licence(body).unwrap();
        assert_eq!(l.key, "jetpack-anti-spam_xZjt");
        assert_eq!(l.issued_at.unwrap().to_string(), "2020-09-08 16:14:58");
        assert_eq!(l.revoked_at, None);
        assert_eq!(licence(br#"{"license_key":""}"#), None);
        let page = br#"{"items":[{"license_key":"k","product":"jetpack-scan","revoked_at":"2020-09-08 16:14:58"}]}"#;
        assert!(listing(page).unwrap()[0].revoked);
        let fam =
            br#"[{"name":"Scan","products":[{"slug":"jetpack-scan","name":"Jetpack Scan"}]}]"#;
        assert_eq!(families(fam).unwrap()[0].family, "Scan");
    }
}
