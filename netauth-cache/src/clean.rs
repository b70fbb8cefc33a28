//! Rules that keep hostile or broken directory data out of the host's view.
//!
//! The NSS module hands these strings to every program on the host, many of
//! which re-parse them as `passwd`/`group` lines, so anything that could
//! break such a parser, or be mistaken for something else, is refused here.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::trusted::{read_trusted, TrustError, TrustRule};

/// Longest user or group name served, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest gecos served, in bytes; longer ones are cut (at a character boundary).
pub const MAX_GECOS_BYTES: usize = 1024;
/// Longest home or shell path served, in bytes.
pub const MAX_PATH_BYTES: usize = 4095;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLong,
    AllDigits,
    BadCharacter,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "empty name",
            NameProblem::TooLong => "name longer than 64 bytes",
            NameProblem::AllDigits => "name made of digits only (it would read as a number)",
            NameProblem::BadCharacter => "name does not match ^[A-Za-z0-9_][A-Za-z0-9._-]*\\$?$",
        })
    }
}

/// Checks a user or group name against the safe pattern
/// `^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$`, not all digits, at most 64 bytes.
///
/// This is the portable set (POSIX "portable filename characters") plus a
/// trailing `$` for Samba machine accounts. It excludes everything a
/// `passwd`/`group` parser splits on (`:`, `,`, newline), whitespace,
/// NUL and control bytes, a leading `-` (read as an option by tools) or `.`,
/// and all-digit names (`chown 1234` would take them for a uid).
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return Err(NameProblem::Empty);
    };
    if bytes.len() > MAX_NAME_BYTES {
        return Err(NameProblem::TooLong);
    }
    let body = rest.strip_suffix(b"$").unwrap_or(rest);
    let ok_first = first.is_ascii_alphanumeric() || first == b'_';
    let ok_body = body
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok_first || !ok_body {
        return Err(NameProblem::BadCharacter);
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return Err(NameProblem::AllDigits);
    }
    Ok(())
}

/// Cleans a gecos field: `:` and every control character (NUL, newline,
/// carriage return, tab, the rest of C0 and C1, DEL) become a space, and the
/// result is cut to 1,024 bytes. Returns the cleaned text and whether it
/// changed.
pub fn clean_gecos(raw: &str) -> (String, bool) {
    let mut out: String = raw
        .chars()
        .map(|c| if c == ':' || c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_GECOS_BYTES {
        let mut end = MAX_GECOS_BYTES;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    let changed = out != raw;
    (out, changed)
}

/// A path usable as a home directory or shell: absolute, at most 4,095
/// bytes, without `:` or control characters, and without `.` or `..`
/// components (a home of `/home/../etc` is refused, not normalized).
pub fn usable_path(raw: &str) -> Option<&str> {
    if !raw.starts_with('/') || raw.len() > MAX_PATH_BYTES {
        return None;
    }
    if raw.chars().any(|c| c == ':' || c.is_control()) {
        return None;
    }
    if raw.split('/').any(|part| part == "." || part == "..") {
        return None;
    }
    Some(raw)
}

/// The shells listed in a `shells(5)` file: one absolute path a line,
/// blank lines and `#` comments ignored.
pub fn parse_shells(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

/// Longest public key entry (`TYPE:KEY`) served, in bytes: room for the
/// largest OpenSSH keys and certificates with options, not for a
/// megabyte-long "key" that every host's cache would carry.
pub const MAX_KEY_BYTES: usize = 32 * 1024;
/// Most public keys served per user; the refresh keeps the first ones.
pub const MAX_KEYS_PER_USER: usize = 128;
/// Longest key TYPE, in bytes.
pub const MAX_KEY_TYPE_BYTES: usize = 64;

/// Why a public key entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// No `:` between TYPE and KEY, or an empty TYPE.
    NoType,
    /// TYPE holds a byte other than printable ASCII without space, or is
    /// longer than 64 bytes.
    BadType,
    /// Nothing after the `:`.
    Empty,
    /// Longer than [`MAX_KEY_BYTES`].
    TooLong,
    /// A control character (NUL, newline, carriage return, tab, C1, DEL):
    /// `ssh-keys` prints one key per line, and sshd reads every line it
    /// prints as a key.
    ControlCharacter,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyProblem::NoType => "no TYPE: before the key",
            KeyProblem::BadType => "the key TYPE is not printable ASCII without space",
            KeyProblem::Empty => "empty key",
            KeyProblem::TooLong => "key longer than 32 KiB",
            KeyProblem::ControlCharacter => "key holds a control character",
        })
    }
}

/// Checks a public key entry as NetAuth stores it (`TYPE:KEY`, the TYPE
/// upper-cased by the server; the KEY is everything after the first `:`
/// and may hold `:` and spaces) and returns its TYPE and KEY.
pub fn check_key(entry: &str) -> Result<(&str, &str), KeyProblem> {
    if entry.len() > MAX_KEY_BYTES {
        return Err(KeyProblem::TooLong);
    }
    let Some((kind, key)) = entry.split_once(':') else {
        return Err(KeyProblem::NoType);
    };
    if kind.is_empty() {
        return Err(KeyProblem::NoType);
    }
    if kind.len() > MAX_KEY_TYPE_BYTES || !kind.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyProblem::BadType);
    }
    if key.chars().any(char::is_control) {
        return Err(KeyProblem::ControlCharacter);
    }
    if key.trim().is_empty() {
        return Err(KeyProblem::Empty);
    }
    Ok((kind, key))
}

/// Names and numbers of the local accounts that NetAuth must not shadow.
#[derive(Debug, Default, Clone)]
pub struct LocalAccounts {
    pub user_names: HashSet<String>,
    pub uids: HashSet<u32>,
    pub group_names: HashSet<String>,
    pub gids: HashSet<u32>,
    /// Per user name listed in a local group line's member field, the
    /// names of those local groups (in file order). glibc adds them to a
    /// user of that name, a NetAuth user too: NSS merges groups by name.
    pub member_of: BTreeMap<String, Vec<String>>,
}

/// Reads the member field (the fourth) of group lines.
fn parse_members(text: &str, member_of: &mut BTreeMap<String, Vec<String>>) {
    for line in text.lines() {
        if line.is_empty() || line.starts_with(['#', '+', '-']) {
            continue;
        }
        let mut fields = line.split(':');
        let (Some(group), Some(members)) = (fields.next(), fields.nth(2)) else {
            continue;
        };
        for member in members.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let groups = member_of.entry(member.to_owned()).or_default();
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_owned());
            }
        }
    }
}

/// Reads `name:x:number:...` lines (passwd and group share the first three
/// fields). Every line's name counts, even when the rest is malformed; NIS
/// compat lines (`+`/`-`) carry no account and are ignored.
fn parse_names_and_numbers(text: &str, names: &mut HashSet<String>, numbers: &mut HashSet<u32>) {
    for line in text.lines() {
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('+')
            || line.starts_with('-')
        {
            continue;
        }
        let mut fields = line.split(':');
        if let Some(name) = fields.next() {
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
        if let Some(n) = fields.nth(1).and_then(|f| f.trim().parse::<u32>().ok()) {
            numbers.insert(n);
        }
    }
}

impl LocalAccounts {
    /// Parses the contents of a local passwd and group file.
    pub fn parse(passwd: &str, group: &str) -> LocalAccounts {
        let mut l = LocalAccounts::default();
        parse_names_and_numbers(passwd, &mut l.user_names, &mut l.uids);
        parse_names_and_numbers(group, &mut l.group_names, &mut l.gids);
        parse_members(group, &mut l.member_of);
        l
    }

    /// Reads the two files. A file that cannot be read is an error: without
    /// it the refresh cannot tell what it would shadow. So is one that is
    /// not to be trusted ([`TrustRule::LOCAL_ACCOUNTS`]): whoever can write
    /// it decides which directory accounts are served.
    pub fn read(passwd: &Path, group: &Path) -> Result<LocalAccounts, TrustError> {
        let p = read_trusted(passwd, &TrustRule::LOCAL_ACCOUNTS)?;
        let g = read_trusted(group, &TrustRule::LOCAL_ACCOUNTS)?;
        Ok(LocalAccounts::parse(
            &String::from_utf8_lossy(&p),
            &String::from_utf8_lossy(&g),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            check_key("SSH:ssh-ed25519 AAAAC3Nza alice@host"),
            Ok(("SSH", "ssh-ed25519 AAAAC3Nza alice@host"))
        );
        // Everything after the first colon is the key.
        assert_eq!(
            check_key("SSH:from=\"10.0.0.1\" ssh-rsa AAAA a:b"),
            Ok(("SSH", "from=\"10.0.0.1\" ssh-rsa AAAA a:b"))
        );
        assert_eq!(check_key("GPG:ABCD 1234"), Ok(("GPG", "ABCD 1234")));
        assert_eq!(check_key("ssh-ed25519 AAAA"), Err(KeyProblem::NoType));
        assert_eq!(check_key(":ssh-ed25519 AAAA"), Err(KeyProblem::NoType));
        assert_eq!(check_key("S H:AAAA"), Err(KeyProblem::BadType));
        assert_eq!(check_key("SSH\n:AAAA"), Err(KeyProblem::BadType));
        assert_eq!(check_key("SSH:"), Err(KeyProblem::Empty));
        assert_eq!(check_key("SSH:  "), Err(KeyProblem::Empty));
        for bad in ["a\nb", "a\0b", "a\rb", "a\tb", "a\u{7f}b", "a\u{85}b"] {
            assert_eq!(
                check_key(&format!("SSH:ssh-ed25519 {bad}")),
                Err(KeyProblem::ControlCharacter),
                "{bad:?}"
            );
        }
        let long = format!("SSH:{}", "A".repeat(MAX_KEY_BYTES));
        assert_eq!(check_key(&long), Err(KeyProblem::TooLong));
        let fits = format!("SSH:{}", "A".repeat(MAX_KEY_BYTES - 4));
        assert!(check_key(&fits).is_ok());
        assert_eq!(
            check_key(&format!("{}:AAAA", "T".repeat(MAX_KEY_TYPE_BYTES + 1))),
            Err(KeyProblem::BadType)
        );
    }

    #[test]
    fn names() {
        for ok in [
            "alice",
            "a",
            "_svc",
            "bob.smith",
            "x-y_z",
            "host$",
            "0day",
            "A1",
            "9a",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(65);
        for (bad, why) in [
            ("", NameProblem::Empty),
            ("1234", NameProblem::AllDigits),
            ("0", NameProblem::AllDigits),
            (long.as_str(), NameProblem::TooLong),
            ("-rf", NameProblem::BadCharacter),
            (".hidden", NameProblem::BadCharacter),
            ("..", NameProblem::BadCharacter),
            ("a:b", NameProblem::BadCharacter),
            ("a,b", NameProblem::BadCharacter),
            ("a b", NameProblem::BadCharacter),
            ("a\nb", NameProblem::BadCharacter),
            ("a\0b", NameProblem::BadCharacter),
            ("a$b", NameProblem::BadCharacter),
            ("$", NameProblem::BadCharacter),
            ("a$$", NameProblem::BadCharacter),
            ("al/ice", NameProblem::BadCharacter),
            ("ålice", NameProblem::BadCharacter),
            ("a\u{202e}b", NameProblem::BadCharacter),
        ] {
            assert_eq!(check_name(bad), Err(why), "{bad:?}");
        }
        assert_eq!(check_name(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn gecos() {
        assert_eq!(
            clean_gecos("Alice Liddell,Room 1,,"),
            ("Alice Liddell,Room 1,,".into(), false)
        );
        assert_eq!(
            clean_gecos("a:b\nc\0d\te\u{7f}f\u{85}g"),
            ("a b c d e f g".into(), true)
        );
        assert_eq!(clean_gecos("Zoë"), ("Zoë".into(), false));
        let long = "é".repeat(600); // 1,200 bytes
        let (cut, changed) = clean_gecos(&long);
        assert!(changed);
        assert!(cut.len() <= MAX_GECOS_BYTES && cut.len() >= MAX_GECOS_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn paths() {
        assert_eq!(usable_path("/home/alice"), Some("/home/alice"));
        assert_eq!(usable_path("/bin/bash"), Some("/bin/bash"));
        for bad in [
            "",
            "home/alice",
            "/home/a:b",
            "/home/a\nb",
            "/home/\0",
            "/home/../etc",
            "/./x",
            "/home/..",
        ] {
            assert_eq!(usable_path(bad), None, "{bad:?}");
        }
        assert_eq!(usable_path(&format!("/{}", "a".repeat(5000))), None);
    }

    #[test]
    fn shells_file() {
        let s = parse_shells("# /etc/shells\n/bin/sh\n  /bin/bash  \n\nbash\n/usr/bin/zsh\n");
        assert!(s.contains("/bin/sh") && s.contains("/bin/bash") && s.contains("/usr/bin/zsh"));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn local_accounts() {
        let l = LocalAccounts::parse(
            "root:x:0:0:root:/root:/bin/bash\n# c\nalice:x:1000:1000::/home/alice:/bin/sh\n+nis\nbroken\n",
            "root:x:0:\nstaff:x:50:alice\n",
        );
        assert!(l.user_names.contains("root") && l.user_names.contains("alice"));
        assert!(l.user_names.contains("broken"));
        assert!(!l.user_names.contains("+nis"));
        assert_eq!(l.uids, HashSet::from([0, 1000]));
        assert!(l.group_names.contains("staff"));
        assert_eq!(l.gids, HashSet::from([0, 50]));
        assert_eq!(l.member_of["alice"], vec!["staff"]);
    }

    #[test]
    fn local_group_members() {
        let l = LocalAccounts::parse(
            "",
            "root:x:0:\nsudo:x:27:alice,bob\n# x:x:1:alice\nstaff:x:50: alice \n\
             +nis:x:9:alice\nbroken:x\nsudo:x:27:alice\ncdrom:x:24:\n",
        );
        assert_eq!(l.member_of["alice"], vec!["sudo", "staff"]);
        assert_eq!(l.member_of["bob"], vec!["sudo"]);
        assert_eq!(l.member_of.len(), 2);
    }
}
