//! Masking secrets (the client secret, bearer tokens) in the texts the client keeps: the
//! request/response records for WHMCS's module log and the messages of its failures. A secret
//! is masked in every form it can take there: raw, JSON-escaped (serde's escapes, `\/`, and
//! ASCII-only `\u00e9` escapes in either case), form-urlencoded (`+` for a space) and
//! percent-encoded (`%20`, every non-alphanumeric byte, either case of hex digits). JSON
//! answers carrying a token are rebuilt with the value replaced before any text search.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::Failure;

/// Every form `secret` can take in a JSON body, a form body or a URL, longest first, without
/// duplicates.
pub fn forms(secret: &str) -> Vec<String> {
    let json = json_body(secret);
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let strict = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let mut all = vec![secret.to_owned(), json.replace('/', "\\/"), json];
    for upper in [false, true] {
        let ascii = json_ascii(secret, upper);
        all.push(ascii.replace('/', "\\/"));
        all.push(ascii);
    }
    for encoded in [form, percent, strict] {
        all.push(lower_hex(&encoded));
        all.push(encoded);
    }
    all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    all.dedup();
    all
}

/// `s` as serde_json writes it inside a JSON string (without the quotes).
fn json_body(s: &str) -> String {
    let quoted = Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// `s` inside a JSON string with every non-ASCII character as `\uXXXX` (UTF-16 units).
fn json_ascii(s: &str, upper: bool) -> String {
    let mut out = String::new();
    for c in json_body(s).chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            });
        }
    }
    out
}

/// A percent-encoded text with the hex digits after each `%` in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            hex_left = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// Replaces every form (see [`forms`]) of each non-empty secret by `*` × the secret's byte
/// length, as WHMCS's `logModuleCall` does with its replace-vars. Longer forms go first, so a
/// secret that contains another is masked whole.
pub fn mask_all(text: &str, secrets: &[&str]) -> String {
    let mut masks: Vec<(String, String)> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| forms(s).into_iter().map(|f| (f, "*".repeat(s.len()))))
        .collect();
    masks.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    let mut out = text.to_owned();
    for (form, stars) in masks {
        if out.contains(&form) {
            out = out.replace(&form, &stars);
        }
    }
    out
}

/// A JSON object body with the string value of `key` replaced by `*`s, re-serialised; `None`
/// when the body is not a JSON object.
pub(super) fn mask_json_field(body: &[u8], key: &str) -> Option<String> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let field = json.as_object_mut()?.get_mut(key);
    if let Some(value) = field
        && let Some(s) = value.as_str()
    {
        *value = Value::String("*".repeat(s.len()));
    }
    Some(json.to_string())
}

/// `failure` with every form of the secrets masked in its message (the API's own words may
/// quote them).
pub(super) fn mask_failure(failure: Failure, secrets: &[&str]) -> Failure {
    match failure {
        Failure::Transient {
            message,
            retry_after,
            outcome_unknown,
        } => Failure::Transient {
            message: mask_all(&message, secrets),
            retry_after,
            outcome_unknown,
        },
        Failure::Permanent { message } => Failure::Permanent {
            message: mask_all(&message, secrets),
        },
        Failure::TokenRefused { message } => Failure::TokenRefused {
            message: mask_all(&message, secrets),
        },
        Failure::Downgrade { message } => Failure::Downgrade {
            message: mask_all(&message, secrets),
        },
        Failure::Stopped { message } => Failure::Stopped {
            message: mask_all(&message, secrets),
        },
    }
}

#[cfg(test)]
#[path = "mask_tests.rs"]
mod tests;
