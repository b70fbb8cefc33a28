//! The shipped example `packaging/common/config.toml` against the parser:
//! every key it shows (commented out) is one the parser knows, every key
//! the parser knows is shown, and uncommented the file gives exactly the
//! defaults (but for the values the file marks as examples).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::pam::{PamSection, PamSettings, ServiceSection};
use super::refresh::RefreshSettings;
use super::ssh::{SshSection, SshSettings};
use super::unix::UnixSection;
use super::*;

const EXAMPLE: &str = "packaging/common/config.toml";

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(EXAMPLE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example with every `#key = value` and `#[table]` line uncommented
/// (comments have a space after the `#`).
fn uncommented() -> String {
    example_text()
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if !rest.starts_with(' ') && (rest.contains(" = ") || rest.starts_with('[')) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Dotted key -> keys shown in that table of the uncommented example.
fn shown_keys(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(table: &toml::Table, path: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
        let keys = out.entry(path.to_owned()).or_default();
        keys.extend(table.keys().cloned());
        for (key, value) in table {
            if let toml::Value::Table(inner) = value {
                let inner_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(inner, &inner_path, out);
            }
        }
    }
    let doc: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut out = BTreeMap::new();
    walk(&doc, "", &mut out);
    out
}

/// `[unix.refresh]` keys that have no default (unset turns fleet
/// refreshes off): their examples stay commented when the file is
/// uncommented.
const EXAMPLE_ONLY: &[&str] = &["source", "publisher_key", "source_certificate"];

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn known(keys: Vec<String>) -> BTreeSet<String> {
    keys.into_iter().collect()
}

#[test]
fn every_key_is_shown_and_known() {
    let shown = shown_keys(&uncommented());
    let table = |name: &str| {
        shown
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("[{name}] missing from {EXAMPLE}"))
    };
    // NetAuth's tables ignore unknown keys, so a misspelt key in the
    // example would go unnoticed by the parser: the lists are checked here.
    assert_eq!(table(""), set(&["core", "tls", "client", "token", "unix"]));
    assert_eq!(table("core"), set(&["server", "port", "master"]));
    assert_eq!(table("tls"), set(&["certificate", "pwn_me"]));
    assert_eq!(table("client"), set(&["ID"]));
    assert_eq!(table("token"), set(&["cache"]));
    // Ours: serde's own key lists.
    assert_eq!(table("unix"), known(known_keys::<UnixSection>()));
    let mut refresh_shown = table("unix.refresh");
    refresh_shown.extend(set(EXAMPLE_ONLY));
    assert_eq!(refresh_shown, known(known_keys::<RefreshSettings>()));
    // Keys without a default are shown as `# key = value` examples, which
    // uncommenting the file (here and in the package test) leaves alone.
    let text = example_text();
    for key in EXAMPLE_ONLY {
        assert!(
            text.contains(&format!("\n# {key} = ")),
            "{key}: no `# {key} = ...` example in {EXAMPLE}"
        );
    }
    assert_eq!(table("unix.pam"), known(known_keys::<PamSection>()));
    assert_eq!(table("unix.ssh"), known(known_keys::<SshSection>()));
    assert_eq!(table("unix.pam.service"), set(&["sshd"]));
    assert_eq!(
        table("unix.pam.service.sshd"),
        known(known_keys::<ServiceSection>())
    );
}

#[test]
fn uncommented_the_example_gives_the_defaults() {
    let text = uncommented();
    let config = Config::from_toml_str(&text, "/etc/netauth/config.toml")
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let defaults = Config::new("netauth.example.com");

    // NetAuth's tables. The server and the client ID are examples; the
    // master shown is the server, as its default is.
    assert_eq!(config.server, "netauth.example.com");
    assert_eq!(config.master(), config.server);
    assert_eq!(config.port, DEFAULT_PORT);
    assert_eq!(
        config.certificate,
        PathBuf::from("/etc/netauth/keys/tls.pem")
    );
    assert_eq!(config.pwn_me, defaults.pwn_me);
    assert_eq!(config.token_cache, defaults.token_cache);
    assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(config.request_timeout, DEFAULT_REQUEST_TIMEOUT);

    // [unix] and [unix.refresh].
    let unix = &config.unix;
    assert_eq!(unix.connect_timeout(), defaults.unix.connect_timeout());
    assert_eq!(unix.request_timeout(), defaults.unix.request_timeout());
    assert_eq!(unix.cache_dir(), defaults.unix.cache_dir());
    assert_eq!(unix.status_max_age(), defaults.unix.status_max_age());
    assert_eq!(
        RefreshSettings::from_config(&config),
        RefreshSettings::from_config(&defaults)
    );

    // [unix.pam]: its deadlines shown are the [unix] ones it defaults to;
    // the per-service table is an example (the one that is not a default).
    let mut pam = PamSettings::from_config(&config);
    assert_eq!(
        pam.service_allow_groups,
        BTreeMap::from([("sshd".to_owned(), vec!["admins".to_owned()])])
    );
    pam.service_allow_groups.clear();
    assert_eq!(pam.request_timeout, Some(config.request_timeout));
    assert_eq!(pam.connect_timeout, Some(config.connect_timeout));
    pam.request_timeout = None;
    pam.connect_timeout = None;
    assert_eq!(pam, PamSettings::from_config(&defaults));

    // [unix.ssh].
    assert_eq!(SshSettings::from_config(&config), SshSettings::default());
}

/// As shipped (everything commented out but the tables), the file needs
/// only core.server.
#[test]
fn the_shipped_file_parses_once_the_server_is_set() {
    let text = example_text().replacen(
        "#server = \"netauth.example.com\"",
        "server = \"netauth.example.com\"",
        1,
    );
    let config =
        Config::from_toml_str(&text, "/etc/netauth/config.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.unix, Config::new("x").unix);
    let e = Config::from_toml_str(&example_text(), "/etc/netauth/config.toml").unwrap_err();
    assert!(e.to_string().contains("core.server"), "{e}");
}
