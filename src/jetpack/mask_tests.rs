//! Masking, attacked with hostile secrets: whatever characters a secret holds, no encoding of
//! it survives in the masked text, and decoding the masked text does not give it back.

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

use super::*;

/// Characters that JSON, form and URL encodings change, plus ordinary ones.
const ALPHABET: [char; 24] = [
    '/', '"', '\\', '+', '%', '#', '&', '=', '?', ' ', 'é', '€', '😀', 'ß', 'a', 'Z', '0', '-',
    '.', '_', '~', '\'', '<', ':',
];

fn hostile(rng: &mut fastrand::Rng) -> String {
    (0..rng.usize(3..24))
        .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
        .collect()
}

/// A JSON string as a cautious server writes it: `\/`, and `\uXXXX` for all but printable ASCII.
fn escape_like_php(s: &str, upper: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&if upper {
                        format!("\\u{u:04X}")
                    } else {
                        format!("\\u{u:04x}")
                    });
                }
            }
        }
    }
    out.push('"');
    out
}

/// Every string `text` decodes to (JSON, form or percent-encoded), plus `text` itself.
fn decodings(text: &str) -> Vec<String> {
    let mut all = vec![text.to_owned()];
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        all.extend(map.values().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    all.extend(
        url::form_urlencoded::parse(text.as_bytes())
            .flat_map(|(k, v)| [k.into_owned(), v.into_owned()]),
    );
    all.push(percent_decode_str(text).decode_utf8_lossy().into_owned());
    all
}

#[test]
fn no_encoding_of_a_hostile_secret_survives_masking() {
    let mut rng = fastrand::Rng::with_seed(10);
    for _ in 0..2000 {
        let secret = hostile(&mut rng);
        let texts = [
            json!({"access_token": secret, "token_type": "bearer"}).to_string(),
            format!(
                "{{\"access_token\":{},\"scope\":\"x\"}}",
                escape_like_php(&secret, false)
            ),
            format!("{{\"access_token\":{}}}", escape_like_php(&secret, true)),
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", "id")
                .append_pair("client_secret", &secret)
                .finish(),
            format!(
                "GET /x?t={}&n=1",
                utf8_percent_encode(&secret, NON_ALPHANUMERIC)
            ),
            format!("Authorization: Bearer {secret}\nHTTP 401"),
        ];
        for text in texts {
            let masked = mask_all(&text, &[&secret]);
            for decoded in decodings(&masked) {
                assert!(
                    !decoded.contains(&secret),
                    "secret {secret:?} survives in {masked:?} (from {text:?})"
                );
            }
        }
    }
}

#[test]
fn a_secret_that_contains_another_is_masked_whole() {
    let masked = mask_all("x ab/c-wrong y", &["ab/c", "ab/c-wrong"]);
    assert_eq!(masked, "x ********** y");
}

#[test]
fn forms_cover_json_form_and_percent_encodings() {
    let all = forms("a/\"\\ é+");
    for expected in [
        "a/\"\\ é+",
        "a/\\\"\\\\ é+",
        "a\\/\\\"\\\\ \\u00e9+",
        "a\\/\\\"\\\\ \\u00E9+",
        "a%2F%22%5C+%C3%A9%2B",
        "a%2f%22%5c%20%c3%a9%2b",
        "a%2F%22%5C%20%C3%A9%2B",
    ] {
        assert!(all.iter().any(|f| f == expected), "{expected}: {all:?}");
    }
}

#[test]
fn a_token_answer_is_rebuilt_with_the_token_masked() {
    let body = br#"{"access_token":"sbx_\u00e9\/\"x","token_type":"bearer"}"#;
    let rebuilt = mask_json_field(body, "access_token").unwrap();
    let json: Value = serde_json::from_str(&rebuilt).unwrap();
    assert_eq!(json["access_token"], "*".repeat("sbx_é/\"x".len()));
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(mask_json_field(b"<html>", "access_token"), None);
}

#[test]
fn failure_messages_are_masked() {
    let f = Failure::Permanent {
        message: r#"refused (invalid_client: unknown secret s\/3 é)"#.to_owned(),
    };
    assert_eq!(
        mask_failure(f, &["s/3 é"]).to_string(),
        "refused (invalid_client: unknown secret ******)"
    );
}
