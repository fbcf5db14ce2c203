//! GitLab's human duration syntax (`1h 30m`, `3 hours`, `2 days`, `3600`).
//!
//! GitLab parses `timeout`, `start_in`, `artifacts:expire_in` and
//! `environment:auto_stop_in` with the ChronicDuration gem. This module
//! implements the subset real files use: numbers (integer or decimal) with
//! optional units, several terms in a row (`1h30m`, `1 hour and 30 minutes`),
//! `hh:mm:ss` clocks, and a bare number meaning seconds. It only converts
//! text to seconds; limits (a timeout of at most a month) are checked by the
//! caller.

/// Parses a duration into whole seconds, or `None` when the text is not a
/// duration ChronicDuration would understand.
pub(crate) fn parse(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() {
        return None;
    }
    if text.contains(':') {
        return parse_clock(&text);
    }
    let mut total = 0f64;
    let mut rest = text.as_str();
    let mut terms = 0;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r;
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = unit_seconds(unit)?;
        total += number * factor;
        terms += 1;
        if !total.is_finite() || total > 1e15 {
            return None;
        }
    }
    if terms == 0 {
        return None;
    }
    Some(total.round() as u64)
}

fn unit_seconds(unit: &str) -> Option<f64> {
    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;
    Some(match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "wk" | "wks" | "week" | "weeks" => 7.0 * DAY,
        "mo" | "mos" | "month" | "months" => 30.0 * DAY,
        "y" | "yr" | "yrs" | "year" | "years" => 365.0 * DAY,
        _ => return None,
    })
}

/// `mm:ss` or `hh:mm:ss`.
fn parse_clock(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut total: u64 = 0;
    for part in parts {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        total = total.checked_mul(60)?.checked_add(part.parse().ok()?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn gitlab_examples() {
        assert_eq!(parse("1h 30m"), Some(5400));
        assert_eq!(parse("1h30m"), Some(5400));
        assert_eq!(parse("3 hours"), Some(10_800));
        assert_eq!(parse("3 hours 30 minutes"), Some(12_600));
        assert_eq!(parse("1 hour and 30 minutes"), Some(5400));
        assert_eq!(parse("2 days"), Some(172_800));
        assert_eq!(parse("1 week"), Some(604_800));
        assert_eq!(parse("30 mins"), Some(1800));
        assert_eq!(parse("3600"), Some(3600));
        assert_eq!(parse("42 seconds"), Some(42));
        assert_eq!(parse("1.5 hours"), Some(5400));
        assert_eq!(parse("1 month"), Some(2_592_000));
        assert_eq!(parse("1:30"), Some(90));
        assert_eq!(parse("1:00:00"), Some(3600));
        assert_eq!(parse("10 Minutes"), Some(600));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("3 fortnights"), None);
        assert_eq!(parse("h"), None);
        assert_eq!(parse("1..2 h"), None);
        assert_eq!(parse("::"), None);
        assert_eq!(parse("99999999999999999999 years"), None);
    }
}
