//! Go-style durations (`1s`, `500ms`, `1m30s`, `1.5s`), as grpc-health-probe takes them.

use std::time::Duration;

/// Parses a Go duration string (`time.ParseDuration`: a unit on every number; `0` alone).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (examples: 1s, 500ms, 1m30s)");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// `value / unit` with the remainder as decimals, trailing zeros dropped (Go's `fmtFrac`).
fn fraction(value: u128, unit: u128) -> String {
    let (whole, rest) = (value / unit, value % unit);
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Formats a duration exactly as Go's `time.Duration.String` (`1s`, `500ms`, `1.5s`, `1m30s`,
/// `1.234567ms`, `300µs`), as grpc-health-probe prints durations.
pub(crate) fn display(d: Duration) -> String {
    let n = d.as_nanos();
    match n {
        0 => "0s".to_owned(),
        1..=999 => format!("{n}ns"),
        1_000..=999_999 => format!("{}µs", fraction(n, 1_000)),
        1_000_000..=999_999_999 => format!("{}ms", fraction(n, 1_000_000)),
        _ => {
            let secs = n / 1_000_000_000;
            let (h, m) = (secs / 3600, secs / 60 % 60);
            let s = fraction(n % 60_000_000_000, 1_000_000_000);
            if h > 0 {
                format!("{h}h{m}m{s}s")
            } else if m > 0 {
                format!("{m}m{s}s")
            } else {
                format!("{s}s")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert!(parse("2").is_err());
        assert!(parse("").is_err());
        assert!(parse("fast").is_err());
        assert!(parse("1x").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(display(Duration::from_secs(1)), "1s");
        assert_eq!(display(Duration::from_millis(250)), "250ms");
        assert_eq!(display(Duration::from_millis(1500)), "1.5s");
        assert_eq!(display(Duration::from_secs(90)), "1m30s");
        assert_eq!(display(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(display(Duration::from_nanos(1_234_567)), "1.234567ms");
        assert_eq!(display(Duration::from_micros(300)), "300µs");
        assert_eq!(display(Duration::from_nanos(42)), "42ns");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
