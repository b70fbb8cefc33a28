//! Where in the file a problem is: the dotted key and the line.
//!
//! serde reports a byte span (toml attaches the span of the key or value at
//! fault), and the validation step reports a dotted key. Both are turned into
//! key *and* line with the document as toml parsed it ([`DeTable`] keeps the
//! span of every key and value), so every configuration error names file,
//! key and line.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::InvalidSetting;
use crate::error::Error;

/// 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()
        .get(..end)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
        + 1
}

/// A key as written in a dotted path: bare when TOML allows it, else quoted.
pub(crate) fn key_segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The dotted path of the key at byte offset `at`: the key whose name is
/// there, else the innermost key whose value covers it.
pub(crate) fn key_at(root: &DeTable<'_>, at: usize) -> Option<String> {
    let mut by_name = None;
    let mut by_value: Option<Vec<String>> = None;
    let mut path = Vec::new();
    visit(root, at, &mut path, &mut by_name, &mut by_value);
    by_name.or(by_value).map(|parts| parts.join("."))
}

fn visit(
    table: &DeTable<'_>,
    at: usize,
    path: &mut Vec<String>,
    by_name: &mut Option<Vec<String>>,
    by_value: &mut Option<Vec<String>>,
) {
    for (key, value) in table.iter() {
        path.push(key_segment(key.get_ref()));
        if key.span().contains(&at) {
            *by_name = Some(path.clone());
        } else if value.span().contains(&at)
            && by_value.as_ref().is_none_or(|b| b.len() <= path.len())
        {
            // Deeper is more precise. A table's span may be just its header
            // (which names its parents too), hence names first.
            *by_value = Some(path.clone());
        }
        // Tables are walked whatever their span: a table's entries may sit
        // far from its header.
        match value.get_ref() {
            DeValue::Table(inner) => visit(inner, at, path, by_name, by_value),
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        visit(inner, at, path, by_name, by_value);
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// Line of the key at dotted path `dotted` (segments as [`key_segment`]
/// writes them), if the document has it.
pub(crate) fn line_of_key(text: &str, root: &DeTable<'_>, dotted: &str) -> Option<usize> {
    let mut table = root;
    let mut parts = split_dotted(dotted).into_iter().peekable();
    while let Some(part) = parts.next() {
        let (key, value) = table
            .iter()
            .find(|(k, _)| key_segment(k.get_ref()) == part)?;
        if parts.peek().is_none() {
            return Some(line_of(text, key.span().start));
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => return Some(line_of(text, key.span().start)),
        }
    }
    None
}

/// Splits a dotted path written by [`key_segment`] (quoted segments may hold dots).
fn split_dotted(dotted: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in dotted.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' if quoted => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// A serde error of our document as a configuration error naming the key
/// and line (when toml gave a span) and saying what is wrong.
pub(crate) fn from_serde(
    file: &Path,
    text: &str,
    root: &DeTable<'_>,
    error: &toml::de::Error,
) -> Error {
    let span = error.span();
    let key = span.as_ref().and_then(|s| key_at(root, s.start));
    Error::Config {
        file: file.to_owned(),
        key,
        line: span.map(|s| line_of(text, s.start)),
        problem: explain(error.message().trim_end()),
    }
}

/// A failed validation as a configuration error with the key's line.
pub(crate) fn from_invalid(
    file: &Path,
    text: &str,
    root: &DeTable<'_>,
    invalid: InvalidSetting,
) -> Error {
    Error::Config {
        file: file.to_owned(),
        line: line_of_key(text, root, &invalid.key),
        key: Some(invalid.key),
        problem: invalid.problem,
    }
}

/// serde's message, with a hint for an unknown key: its known neighbours,
/// and the one it is likely a misspelling of.
fn explain(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let mut out = format!(
        "unknown key `{unknown}`: every key and table under [unix] is ours, and one we do not \
         know would be ignored"
    );
    if let Some(near) = known.iter().find(|k| same_loosely(k, unknown)) {
        out.push_str(&format!(
            " (did you mean `{near}`? names are case-sensitive)"
        ));
    }
    if known.is_empty() {
        out.push_str("; this table has no keys");
    } else {
        out.push_str(&format!("; known here: {}", known.join(", ")));
    }
    out
}

/// Equal once case and the separators `_`, `-`, `.` and spaces are ignored.
pub(crate) fn same_loosely(a: &str, b: &str) -> bool {
    loose(a) == loose(b)
}

/// Lower case without `_`, `-`, `.` or spaces.
pub(crate) fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lines_of_spans() {
        let text = "[core]\nserver = \"s\"\n\n[unix]\ncache_dir = \"/x\"\n[other]\na = 1\n\
                    [unix.pam.service.sshd]\nallow_groups = [\"a\"]\n[\"odd.name\"]\nb = 2\n";
        let root = DeTable::parse(text).unwrap().into_inner();
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(key_at(&root, at("\"s\"")).as_deref(), Some("core.server"));
        assert_eq!(
            key_at(&root, at("cache_dir")).as_deref(),
            Some("unix.cache_dir")
        );
        assert_eq!(
            key_at(&root, at("[\"a\"]")).as_deref(),
            Some("unix.pam.service.sshd.allow_groups")
        );
        assert_eq!(
            key_at(&root, at("sshd")).as_deref(),
            Some("unix.pam.service.sshd")
        );
        assert_eq!(
            key_at(&root, at("b = 2")).as_deref(),
            Some("\"odd.name\".b")
        );

        assert_eq!(line_of_key(text, &root, "core.server"), Some(2));
        assert_eq!(line_of_key(text, &root, "unix.cache_dir"), Some(5));
        assert_eq!(
            line_of_key(text, &root, "unix.pam.service.sshd.allow_groups"),
            Some(9)
        );
        assert_eq!(line_of_key(text, &root, "\"odd.name\".b"), Some(11));
        assert_eq!(line_of_key(text, &root, "unix.refresh.min_uid"), None);
    }

    #[test]
    fn unknown_keys_get_a_hint() {
        let e = explain("unknown field `Pam`, expected one of `refresh`, `pam`");
        assert!(e.contains("unknown key `Pam`"), "{e}");
        assert!(e.contains("did you mean `pam`?"), "{e}");
        assert!(e.contains("known here: refresh, pam"), "{e}");
        let e = explain("unknown field `refesh`, expected `pam`");
        assert!(!e.contains("did you mean"), "{e}");
        assert_eq!(explain("invalid type"), "invalid type");
        assert!(same_loosely("unix_pam", "Unix-PAM"));
    }
}
