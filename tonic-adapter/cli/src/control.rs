//! The control protocol of `dubbo-health serve --control-stdin` (and of the `greeter_host`
//! example): one command per line, one answer per line.
//!
//! | command | effect |
//! |---|---|
//! | `set NAME STATUS` | [`Registry::set`]; `STATUS` is `SERVING`, `NOT_SERVING`, `UNKNOWN` or its number |
//! | `clear NAME` | [`Registry::clear`] |
//! | `toggle NAME` | `SERVING` ↔ `NOT_SERVING` |
//! | `shutdown` / `resume` | [`Registry::shutdown`] / [`Registry::resume`] |
//!
//! `""` is the empty name; a name in double quotes may hold spaces (`\"` and `\\` escape).
//! Every answer starts with `ok` or `error:`, so a script can wait for it.
//!
//! ```
//! use dubbo_health_core::{FixedRegistry, ServingStatus};
//! use dubbo_health_cli::control::execute;
//!
//! let registry = FixedRegistry::<8>::new();
//! assert!(execute(&registry, "set org.apache.Foo NOT_SERVING").starts_with("ok"));
//! assert_eq!(registry.get("org.apache.Foo"), Some(ServingStatus::NotServing));
//! assert!(execute(&registry, "set \"\" 7").starts_with("error:"));
//! ```

use dubbo_health_core::{Registry, ServingStatus, SetOutcome, Storage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Parses a status as the control protocol and `--set` take it: a proto name (any case) or
/// its number. `SERVICE_UNKNOWN` is refused, as [`Registry::set`] refuses it.
///
/// # Errors
///
/// A message naming the accepted values.
///
/// ```
/// use dubbo_health_core::ServingStatus;
/// use dubbo_health_cli::control::parse_status;
///
/// assert_eq!(parse_status("not_serving"), Ok(ServingStatus::NotServing));
/// assert_eq!(parse_status("1"), Ok(ServingStatus::Serving));
/// assert!(parse_status("SERVICE_UNKNOWN").is_err());
/// ```
pub fn parse_status(text: &str) -> Result<ServingStatus, String> {
    let upper = text.trim().to_ascii_uppercase();
    let status = ServingStatus::from_str_name(&upper)
        .or_else(|| upper.parse::<i32>().ok().and_then(ServingStatus::from_i32))
        .ok_or_else(|| format!("unknown status {text:?} (use SERVING, NOT_SERVING or UNKNOWN)"))?;
    if status == ServingStatus::ServiceUnknown {
        return Err("SERVICE_UNKNOWN cannot be set".into());
    }
    Ok(status)
}

/// `""` (or nothing at all) is the empty name; surrounding double quotes are removed.
///
/// ```
/// use dubbo_health_cli::control::unquote_name;
///
/// assert_eq!(unquote_name("\"\""), "");
/// assert_eq!(unquote_name("org.apache.Foo"), "org.apache.Foo");
/// ```
pub fn unquote_name(text: &str) -> String {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map_or_else(
            || text.to_owned(),
            |t| t.replace("\\\"", "\"").replace("\\\\", "\\"),
        )
}

/// Splits a command line into words; a word in double quotes may hold spaces (`\"` and `\\`
/// escape inside), and `""` is an empty word.
///
/// # Errors
///
/// An unterminated quote, or a quoted word running into the next.
///
/// ```
/// use dubbo_health_cli::control::split_words;
///
/// assert_eq!(split_words(r#"set "" SERVING"#).unwrap(), ["set", "", "SERVING"]);
/// assert!(split_words(r#"set "x"#).is_err());
/// ```
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote".into()),
                    },
                    Some(c) => word.push(c),
                    None => return Err("unterminated quote".into()),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("a quoted name must be followed by a space".into());
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Runs one command against the registry; the answer line starts with `ok` or `error:` (an
/// empty line gives an empty answer).
///
/// ```
/// use dubbo_health_core::FixedRegistry;
/// use dubbo_health_cli::control::execute;
///
/// let registry = FixedRegistry::<8>::new();
/// assert!(execute(&registry, "toggle \"\"").starts_with("ok"));
/// assert!(execute(&registry, "fly away").starts_with("error: unknown command"));
/// ```
pub fn execute<S: Storage>(registry: &Registry<S>, line: &str) -> String {
    let words = match split_words(line) {
        Ok(w) => w,
        Err(e) => return format!("error: {e}"),
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let outcome = |o: SetOutcome| match o {
        SetOutcome::Changed => "changed",
        SetOutcome::Unchanged => "unchanged",
        SetOutcome::Ignored => "ignored (shut down; resume first)",
    };
    match words.as_slice() {
        ["set", name, status] => match parse_status(status) {
            Ok(s) => match registry.set(name, s) {
                Ok(o) => format!("ok {name:?} {s} {}", outcome(o)),
                Err(e) => format!("error: {e}"),
            },
            Err(e) => format!("error: {e}"),
        },
        ["clear", name] => match registry.clear(name) {
            Ok(true) => format!("ok {name:?} cleared"),
            Ok(false) => format!("ok {name:?} was not registered"),
            Err(e) => format!("error: {e}"),
        },
        ["toggle", name] => {
            let next = match registry.get(name) {
                Some(ServingStatus::Serving) => ServingStatus::NotServing,
                _ => ServingStatus::Serving,
            };
            match registry.set(name, next) {
                Ok(o) => format!("ok {name:?} {next} {}", outcome(o)),
                Err(e) => format!("error: {e}"),
            }
        }
        ["shutdown"] => {
            registry.shutdown();
            "ok shut down: every service NOT_SERVING".into()
        }
        ["resume"] => {
            registry.resume();
            "ok resumed: every service SERVING".into()
        }
        [] => String::new(),
        _ => format!(
            "error: unknown command {line:?} (set NAME STATUS | clear NAME | toggle NAME | shutdown | resume)"
        ),
    }
}

/// Reads commands from stdin and answers on stdout until stdin closes (or stdout does).
///
/// ```no_run
/// use dubbo_health_core::FixedRegistry;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
/// # async fn host() {
/// tokio::spawn(dubbo_health_cli::control::run_stdin(&HEALTH));
/// # }
/// ```
pub async fn run_stdin<S: Storage>(registry: &Registry<S>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = execute(registry, &line);
        if answer.is_empty() {
            continue;
        }
        if stdout
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .is_err()
            || stdout.flush().await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dubbo_health_core::FixedRegistry;

    #[test]
    fn statuses_parse_by_name_and_number() {
        assert_eq!(parse_status("serving"), Ok(ServingStatus::Serving));
        assert_eq!(parse_status("NOT_SERVING"), Ok(ServingStatus::NotServing));
        assert_eq!(parse_status("0"), Ok(ServingStatus::Unknown));
        assert!(parse_status("SERVICE_UNKNOWN").is_err());
        assert!(parse_status("up").is_err());
    }

    #[test]
    fn words_split_with_quotes() {
        assert_eq!(
            split_words(r#"set "" SERVING"#).unwrap(),
            ["set", "", "SERVING"]
        );
        assert_eq!(split_words(r#"set "a b" x"#).unwrap(), ["set", "a b", "x"]);
        assert_eq!(
            split_words("  clear  g/org.Foo:1.0.0 ").unwrap(),
            ["clear", "g/org.Foo:1.0.0"]
        );
        assert!(split_words(r#"set "abc"#).is_err());
    }

    #[test]
    fn commands_drive_the_registry() {
        let registry = FixedRegistry::<8>::new();
        assert!(execute(&registry, "set svc SERVING").starts_with("ok"));
        assert_eq!(registry.get("svc"), Some(ServingStatus::Serving));
        assert!(execute(&registry, "toggle svc").starts_with("ok"));
        assert_eq!(registry.get("svc"), Some(ServingStatus::NotServing));
        assert!(execute(&registry, r#"set "" NOT_SERVING"#).starts_with("ok"));
        assert_eq!(registry.get(""), Some(ServingStatus::NotServing));
        assert!(execute(&registry, "clear svc").starts_with("ok"));
        assert_eq!(registry.get("svc"), None);
        assert!(execute(&registry, "shutdown").starts_with("ok"));
        assert!(execute(&registry, "set a SERVING").contains("ignored"));
        assert!(execute(&registry, "resume").starts_with("ok"));
        assert_eq!(registry.get(""), Some(ServingStatus::Serving));
        assert!(execute(&registry, "set a SERVICE_UNKNOWN").starts_with("error"));
        assert!(execute(&registry, "frobnicate").starts_with("error"));
        assert!(
            execute(&registry, &format!("set {} SERVING", "x".repeat(201))).starts_with("error")
        );
    }

    #[test]
    fn quoted_set_names() {
        assert_eq!(unquote_name(r#""""#), "");
        assert_eq!(unquote_name("svc"), "svc");
        assert_eq!(unquote_name(r#""a\"b""#), "a\"b");
    }
}
