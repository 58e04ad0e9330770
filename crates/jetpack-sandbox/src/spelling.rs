//! How the status endpoint spells `products[].slug` ([`Spelling`]): the partner documents no
//! spelling, so the sandbox can answer in each one the real partner might use. The provision
//! form always takes the short forms; [`status_slug`] is the one mapping from a provisioned
//! form slug to its status spelling.

use std::fmt;
use std::str::FromStr;

/// The spelling of `products[].slug` in the status answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Spelling {
    /// WordPress.com product slugs: `jetpack_premium`, `jetpack_business` (= professional),
    /// `jetpack_backup_daily`.
    #[default]
    Wpcom,
    /// The provision form's own slugs: `premium`, `jetpack-backup-daily`.
    Short,
    /// The WordPress.com slug of the monthly variant: `jetpack_premium_monthly`.
    WpcomMonthly,
    /// WordPress.com slugs with hyphens: `jetpack-premium`, `jetpack-business`.
    Hyphenated,
}

impl Spelling {
    /// Every spelling, for tests that run under each.
    pub const ALL: [Spelling; 4] = [
        Spelling::Wpcom,
        Spelling::Short,
        Spelling::WpcomMonthly,
        Spelling::Hyphenated,
    ];

    /// The name used by `--spelling` and `/_sandbox/config`: `wpcom`, `short`,
    /// `wpcom_monthly` or `hyphenated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Spelling::Wpcom => "wpcom",
            Spelling::Short => "short",
            Spelling::WpcomMonthly => "wpcom_monthly",
            Spelling::Hyphenated => "hyphenated",
        }
    }
}

impl fmt::Display for Spelling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Spelling {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Spelling::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown spelling {raw:?}; expected wpcom, short, wpcom_monthly or hyphenated"
                )
            })
    }
}

/// The status endpoint's spelling of `short`, a slug as the provision form takes it
/// (`premium`, `jetpack-backup-daily`). Professional is `business` in every WordPress.com
/// spelling, and the `jetpack` prefix is added once.
pub fn status_slug(short: &str, spelling: Spelling) -> String {
    if spelling == Spelling::Short {
        return short.to_owned();
    }
    let base = match short {
        "professional" => "business",
        other => other,
    };
    let (separator, other) = match spelling {
        Spelling::Hyphenated => ('-', '_'),
        _ => ('_', '-'),
    };
    let base = base.replace(other, &separator.to_string());
    let prefix = format!("jetpack{separator}");
    let slug = if base.starts_with(&prefix) {
        base
    } else {
        format!("{prefix}{base}")
    };
    match spelling {
        Spelling::WpcomMonthly => format!("{slug}_monthly"),
        _ => slug,
    }
}
