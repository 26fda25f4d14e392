//! String-shaped values with a meaning: durations, expressions, templates, colors,
//! addresses, cron lines, time zones and secret-bearing strings.
//!
//! Each is a transparent newtype, so files stay plain YAML; `validate::values` checks
//! their content and these types say in the schema what they hold.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident $(, pattern = $pattern:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(
            $(#[schemars(regex(pattern = $pattern))])?
            pub String
        );

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A duration such as `90s`, `15m`, `2h`, `3d`, `2w` or `1h30m`.
    DurationText,
    pattern = r"^\s*([0-9]+\s*(ms|s|m|h|d|w)\s*)+$"
);
string_newtype!(
    /// A bare minijinja expression, e.g. `contact.score >= 50 and "vip" in contact.tags`.
    Expr
);
string_newtype!(
    /// Text with minijinja `{{ … }}` placeholders, e.g. `Hi {{ contact.first_name }}`.
    TemplateText
);
string_newtype!(
    /// A CSS hex color: `#3b82f6`, `#fff` or `#3b82f680`.
    Color,
    pattern = r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"
);
string_newtype!(
    /// An email address, optionally with a display name: `Ada <ada@example.com>`.
    EmailAddress
);
string_newtype!(
    /// An absolute http(s) URL; may contain `{{ … }}` and `${ENV}` references where noted.
    Url
);
string_newtype!(
    /// A cron line with 5 fields (minute hour day month weekday) or 6 with seconds.
    CronExpr
);
string_newtype!(
    /// An IANA time zone name such as `Europe/Berlin` or `UTC`.
    TimeZoneName
);
string_newtype!(
    /// A secret: must be a `${ENV_VAR}` reference, resolved at run time, never the value.
    Secret,
    pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
);
string_newtype!(
    /// An identifier: lowercase letters, digits, `-` and `_`.
    Ident,
    pattern = r"^[a-z0-9][a-z0-9_-]*$"
);

impl DurationText {
    /// Parses the duration into whole milliseconds.
    pub fn millis(&self) -> Result<u64, String> {
        parse_duration_ms(&self.0)
    }
}

/// Parses `1h30m`-style durations into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("a duration must not be empty".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("expected a number at `{}`", &s[start..]));
        }
        let n: u64 = s[start..i]
            .parse()
            .map_err(|_| format!("`{}` is too large", &s[start..i]))?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor: u64 = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(format!("`{n}` needs a unit: ms, s, m, h, d or w")),
            other => {
                return Err(format!("unknown unit `{other}`; use ms, s, m, h, d or w"));
            }
        };
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too large".to_string())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("3d"), Ok(259_200_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
    }

    #[test]
    fn rejects_durations_without_units_or_with_unknown_ones() {
        assert!(parse_duration_ms("15").is_err());
        assert!(parse_duration_ms("3 days").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("m").is_err());
    }
}
