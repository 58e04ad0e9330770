//! The one error of the Licensing API boundary, and how an answer that is not a success
//! becomes one. A non-idempotent call (an issue) is read conservatively: anything that may
//! have reached the API and acted without us reading its answer (a timeout, a broken
//! connection, a 5xx, an unreadable 2xx) leaves its outcome unknown.

use std::time::Duration;

use serde_json::Value;

/// A failed Licensing API call, by what the worker should do next. Its messages never hold
/// the token (masked in every encoding before they are built into this).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LicensingError {
    /// Try again later: a timeout, a connection error, 408, 429, 5xx, an unreadable answer.
    #[error("{message}")]
    Transient {
        /// What happened, safe to show.
        message: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// The call may have reached the API and acted (an acting call only).
        outcome_unknown: bool,
    },
    /// HTTP 401 or 403: the token is unknown or disabled, or may not make this call (the
    /// portal's listing, attaching for a partner Automattic has not allowlisted).
    #[error("{message}")]
    Forbidden {
        /// The API's words, safe to show.
        message: String,
    },
    /// Another 4xx: an unknown product, key or site, a revoked licence. Retrying will not help.
    #[error("{message}")]
    Refused {
        /// The API's words, safe to show.
        message: String,
        /// The HTTP status (404: no such licence).
        status: u16,
    },
    /// An acting call was not sent: the lease could not be confirmed for it.
    #[error("the call was not started: {message}")]
    Stopped {
        /// Why.
        message: String,
    },
}

impl LicensingError {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            LicensingError::Transient { message, .. }
            | LicensingError::Forbidden { message }
            | LicensingError::Refused { message, .. }
            | LicensingError::Stopped { message } => message,
        }
    }

    /// The same error with `f` applied to its message (masking).
    pub(super) fn map_message(self, f: impl Fn(&str) -> String) -> LicensingError {
        match self {
            LicensingError::Transient {
                message,
                retry_after,
                outcome_unknown,
            } => LicensingError::Transient {
                message: f(&message),
                retry_after,
                outcome_unknown,
            },
            LicensingError::Forbidden { message } => LicensingError::Forbidden {
                message: f(&message),
            },
            LicensingError::Refused { message, status } => LicensingError::Refused {
                message: f(&message),
                status,
            },
            LicensingError::Stopped { message } => LicensingError::Stopped {
                message: f(&message),
            },
        }
    }

    /// How the breaker counts it: None for an answer the API gave, Some(Retry-After) for
    /// trouble; a call not sent is not counted (outer None).
    pub(super) fn trouble(&self) -> Option<Option<Option<Duration>>> {
        match self {
            LicensingError::Transient { retry_after, .. } => Some(Some(*retry_after)),
            LicensingError::Forbidden { .. } | LicensingError::Refused { .. } => Some(None),
            LicensingError::Stopped { .. } => None,
        }
    }
}

/// `code: message` from the spec's `{"code", "message"}` (or `error`), at most 300 characters.
fn said(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| {
        json.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let code = text("code").or_else(|| text("error"));
    let message = text("message");
    let both = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => return None,
    };
    Some(both.chars().take(300).collect())
}

/// The error for an answer that is not a success (or a 2xx whose body could not be read),
/// for the call that tried to `what` (`may_act`: it could have acted).
pub(super) fn classify(
    what: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    may_act: bool,
) -> LicensingError {
    let detail = said(body).unwrap_or_else(|| {
        if body.is_empty() {
            "empty body".to_owned()
        } else {
            crate::jetpack::transport::excerpt(body)
        }
    });
    if status == 401 || status == 403 {
        return LicensingError::Forbidden {
            message: format!("the Licensing API refused to {what}: {detail} (HTTP {status})"),
        };
    }
    let transient = |acted: bool| LicensingError::Transient {
        message: format!("the Licensing API answered HTTP {status} to {what} ({detail})"),
        retry_after,
        outcome_unknown: acted,
    };
    match status {
        408 | 429 => transient(false),
        500.. => transient(may_act),
        200..=299 => LicensingError::Transient {
            message: format!("the Licensing API gave an unusable answer to {what} ({detail})"),
            retry_after,
            outcome_unknown: may_act,
        },
        _ => LicensingError::Refused {
            message: format!("the Licensing API refused to {what}: {detail} (HTTP {status})"),
            status,
        },
    }
}

/// A transport failure (no answer read) as this boundary's error.
pub(super) fn from_transport(f: crate::jetpack::Failure) -> LicensingError {
    match f {
        crate::jetpack::Failure::Transient {
            message,
            retry_after,
            outcome_unknown,
        } => LicensingError::Transient {
            message: message.replace("partner API", "Licensing API"),
            retry_after,
            outcome_unknown,
        },
        other => LicensingError::Transient {
            message: other.to_string(),
            retry_after: None,
            outcome_unknown: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_that_may_have_acted_is_unknown_and_a_refusal_is_not() {
        let unknown = |e: LicensingError| {
            matches!(
                e,
                LicensingError::Transient {
                    outcome_unknown: true,
                    ..
                }
            )
        };
        assert!(unknown(classify("issue", 502, b"<html>", None, true)));
        assert!(unknown(classify("issue", 200, b"not json", None, true)));
        assert!(!unknown(classify("issue", 429, b"{}", None, true)));
        assert!(!unknown(classify("look", 503, b"", None, false)));
        let forbidden = classify(
            "list",
            403,
            br#"{"code":"rest_forbidden","message":"no"}"#,
            None,
            false,
        );
        assert_eq!(
            forbidden,
            LicensingError::Forbidden {
                message: "the Licensing API refused to list: rest_forbidden: no (HTTP 403)".into()
            }
        );
        assert!(matches!(
            classify("issue", 400, br#"{"code":"invalid_product"}"#, None, true),
            LicensingError::Refused { status: 400, .. }
        ));
    }
}
