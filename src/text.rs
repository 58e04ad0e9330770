//! Texts the worker writes or shows, made to fit where they go: cut to a column's size on a
//! character boundary, made safe for WHMCS's utf8mb3 columns, and an error told with its
//! causes, each once. A leaf: it imports nothing from the crate, so the store and the API
//! client can both use it.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// Cuts `text` to at most `max_bytes` bytes on a character boundary, ending with a marker
/// when it was cut, so every text the worker writes fits its column.
pub fn fit(text: &str, max_bytes: usize) -> Cow<'_, str> {
    const MARKER: &str = " … [cut]";
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut end = max_bytes.saturating_sub(MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{MARKER}", &text[..end]))
}

/// Characters outside the Basic Multilingual Plane (emoji) cannot be stored in WHMCS's
/// utf8mb3 columns; they become U+FFFD so a write never fails or truncates.
pub fn utf8mb3_safe(text: &str) -> String {
    text.chars()
        .map(|c| if (c as u32) > 0xFFFF { '\u{FFFD}' } else { c })
        .collect()
}

/// An error with its causes, `message: cause: cause`, for logs and stored texts. The worker's
/// own errors keep their causes out of their messages (they are in `source`), but some
/// libraries' errors (sqlx's among them) write their cause into their message *and* return
/// it as their source: a cause the text so far already ends with is not repeated.
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !said.ends_with(&text) {
                said.push_str(": ");
                said.push_str(&text);
            }
            cause = e.source();
        }
        f.write_str(&said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_on_a_character_boundary_with_a_marker() {
        assert_eq!(fit("short", 10), "short");
        let long = "é".repeat(100);
        let cut = fit(&long, 51);
        assert!(cut.len() <= 51, "{}", cut.len());
        assert!(cut.ends_with(" … [cut]"));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn emoji_become_replacement_characters() {
        assert_eq!(utf8mb3_safe("ok 🚀 é"), "ok \u{FFFD} é");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading the thing")]
    struct Outer(#[source] Middle);

    /// Says its cause in its message and returns it as its source too.
    #[derive(Debug, thiserror::Error)]
    #[error("error talking: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn a_chain_names_each_cause_once() {
        let e = Outer(Middle(std::io::Error::other("connection reset")));
        assert_eq!(
            Chain(&e).to_string(),
            "reading the thing: error talking: connection reset"
        );
    }
}
