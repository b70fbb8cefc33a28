//! `netauth-unix status`: a report for people on standard output, and an
//! exit status for monitoring systems.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | healthy: the configuration is valid, the cache is one the NSS module accepts, younger than `[unix] status_max_age_s`, the last refresh succeeded and the server answers |
//! | 1 | stale: the cache is older than `status_max_age_s` (or dated ahead of the clock), or the last refresh failed, or none is recorded |
//! | 2 | the configuration is invalid (as for every command, and for usage errors) |
//! | 3 | the NSS module would refuse the cache: missing, untrusted (owner, mode, folder, link, not a regular file), not readable by other users, or damaged |
//! | 4 | the server cannot be reached (or refuses the TLS connection) |
//!
//! When several apply, the cause that can explain the others wins: 2, then
//! 3, then 4, then 1 (an unreachable server explains a failed refresh).
//! Every problem found is also one line on standard error.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netauth_cache::trusted::{open_trusted, TrustRule};
use netauth_cache::{LazyCheck, CACHE_DIR, CACHE_FILE_NAME};
use netauth_core::blocking::BlockingClient;
use netauth_core::config::Config;
use netauth_core::{ClientBuilder, Error};
use netauth_unix::refresh::{self, server_label, RefreshSettings, RefreshStatus};

use crate::fail;
use crate::output::{say, tell};

/// Deadline of the reachability check.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Where PAM service files live: a `[unix.pam.service.NAME]` table should
/// name one of them.
const PAM_DIR: &str = "/etc/pam.d";
/// A cache dated this far ahead of the clock is not called fresh.
const CLOCK_SKEW_S: i64 = 300;

/// Exit status: stale cache, or the last refresh failed.
pub const STALE: u8 = 1;
/// Exit status: invalid configuration.
pub const CONFIG_INVALID: u8 = 2;
/// Exit status: the NSS module would refuse the cache.
pub const CACHE_REFUSED: u8 = 3;
/// Exit status: the server cannot be reached.
pub const UNREACHABLE: u8 = 4;

/// What `status` found wrong, by kind.
#[derive(Debug, Default)]
struct Findings {
    cache_refused: Option<String>,
    unreachable: Option<String>,
    stale: Vec<String>,
}

impl Findings {
    /// The exit status: the cause that can explain the others wins.
    fn exit_code(&self) -> u8 {
        if self.cache_refused.is_some() {
            CACHE_REFUSED
        } else if self.unreachable.is_some() {
            UNREACHABLE
        } else if !self.stale.is_empty() {
            STALE
        } else {
            0
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(why) = &self.cache_refused {
            lines.push(format!("the NSS module would refuse the cache: {why}"));
        }
        if let Some(why) = &self.unreachable {
            lines.push(format!("server unreachable: {why}"));
        }
        for why in &self.stale {
            lines.push(format!("stale: {why}"));
        }
        lines
    }
}

/// Why the NSS module would not serve from a cache file.
#[derive(Debug)]
enum Refusal {
    Missing(String),
    Untrusted(String),
    Unusable(String),
}

/// The cache at `path` if the NSS module would serve from it: the same
/// trusted open ([`TrustRule::CACHE`]) and header check ([`LazyCheck`]) as
/// the module, every block's checksum (a lookup reading a damaged block
/// answers UNAVAIL), and read access for other users (the module runs in
/// every user's processes).
fn cache_nss_would_serve(path: &Path) -> Result<(Vec<u8>, LazyCheck), Refusal> {
    let trusted = open_trusted(path, &TrustRule::CACHE).map_err(|e| {
        if e.is_untrusted() {
            Refusal::Untrusted(e.to_string())
        } else {
            Refusal::Missing(e.to_string())
        }
    })?;
    let mode = trusted.metadata().mode();
    if mode & 0o004 == 0 {
        return Err(Refusal::Untrusted(format!(
            "{}: not readable by other users (mode {:04o}): lookups in their processes \
             find nothing",
            path.display(),
            mode & 0o7777
        )));
    }
    if let Some(folder) = path.parent() {
        let folder_mode = std::fs::metadata(folder).map(|m| m.mode()).unwrap_or(0);
        if folder_mode & 0o001 == 0 {
            return Err(Refusal::Untrusted(format!(
                "{}: folder not searchable by other users (mode {:04o})",
                folder.display(),
                folder_mode & 0o7777
            )));
        }
    }
    let bytes = trusted
        .read_all()
        .map_err(|e| Refusal::Missing(e.to_string()))?;
    let check = LazyCheck::new(&bytes)
        .map_err(|e| Refusal::Unusable(format!("{}: {e}", path.display())))?;
    check
        .verify_all(&bytes)
        .map_err(|e| Refusal::Unusable(format!("{}: {e}", path.display())))?;
    Ok((bytes, check))
}

/// Runs `netauth-unix status`.
pub fn run(config_path: &Path) -> ExitCode {
    // The whole file, every table of ours (PAM's included): a file the PAM
    // module would refuse is not a healthy host.
    let (config, warnings) = match Config::load_checked(config_path, Path::new(PAM_DIR)) {
        Ok(c) => c,
        Err(e) => return fail(CONFIG_INVALID, e),
    };
    for w in &warnings {
        tell!("netauth-unix: warning: {w}");
    }
    if let Err(e) = certificate_usable(&config) {
        return fail(CONFIG_INVALID, e);
    }
    let settings = RefreshSettings::from_config(&config);
    let max_age = config.unix.status_max_age();
    let now = unix_now();
    let mut findings = Findings::default();

    report_cache(&settings.cache_dir, now, max_age, &mut findings);
    report_refresh(&settings.cache_dir, now, &mut findings);
    crate::offline_status::report(&settings.cache_dir, now);
    report_server(config, &mut findings);

    let code = findings.exit_code();
    if code == 0 {
        say!("health:       ok");
        return ExitCode::SUCCESS;
    }
    say!("health:       exit {code}");
    for line in findings.lines() {
        tell!("netauth-unix: {}", line.replace(['\n', '\r'], " "));
    }
    ExitCode::from(code)
}

/// The certificate the PAM module would trust, checked as it checks it:
/// missing or untrusted, every login answers PAM_SERVICE_ERR.
fn certificate_usable(config: &Config) -> Result<(), Error> {
    if config.pwn_me {
        return Ok(());
    }
    open_trusted(&config.certificate, &TrustRule::CERTIFICATE)
        .map(drop)
        .map_err(|e| Error::Config {
            file: config.file.clone().unwrap_or_default(),
            key: Some("tls.certificate".to_owned()),
            line: None,
            problem: format!(
                "{}: {}",
                config.certificate.display(),
                e.describe_for(&config.certificate)
            ),
        })
}

fn report_cache(cache_dir: &Path, now: i64, max_age: Duration, findings: &mut Findings) {
    let cache_path = cache_dir.join(CACHE_FILE_NAME);
    say!("cache:        {}", cache_path.display());
    if cache_dir != Path::new(CACHE_DIR) {
        say!("note:         nss_netauth reads {CACHE_DIR}/{CACHE_FILE_NAME}, not this file");
    }
    let (bytes, check) = match cache_nss_would_serve(&cache_path) {
        Ok(cache) => cache,
        Err(refusal) => {
            let (state, why) = match refusal {
                Refusal::Missing(why) => ("MISSING", why),
                Refusal::Untrusted(why) => ("UNTRUSTED", why),
                Refusal::Unusable(why) => ("UNUSABLE", why),
            };
            say!("state:        {state} ({why})");
            findings.cache_refused = Some(why);
            return;
        }
    };
    let view = match check.view(&bytes) {
        Ok(view) => view,
        Err(e) => {
            say!("state:        UNUSABLE ({e})");
            findings.cache_refused = Some(e.to_string());
            return;
        }
    };
    let generated = view.generated_at();
    let age = now - generated;
    say!(
        "written:      {} ({} ago)",
        format_time(generated),
        format_age(age)
    );
    say!("users:        {}", view.user_count());
    say!("groups:       {}", view.group_count());
    if let Ok(source) = view.source() {
        say!("source:       {source}");
    }
    let max_age_s = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if age > max_age_s {
        findings.stale.push(format!(
            "the cache was written {} ago, more than status_max_age_s = {max_age_s}",
            format_age(age)
        ));
    } else if age < -CLOCK_SKEW_S {
        findings.stale.push(format!(
            "the cache is dated {} ahead of the clock",
            format_age(-age)
        ));
    }
}

fn report_refresh(cache_dir: &Path, now: i64, findings: &mut Findings) {
    let st = match RefreshStatus::load(cache_dir) {
        Ok(Some(st)) => st,
        Ok(None) => {
            say!("last attempt: never (no status file)");
            findings
                .stale
                .push("no refresh is recorded (no status file)".to_owned());
            return;
        }
        Err(e) => {
            say!("last attempt: unknown (status file unreadable: {e})");
            findings
                .stale
                .push(format!("the refresh status file is unreadable: {e}"));
            return;
        }
    };
    if let Some(t) = st.last_attempt {
        say!(
            "last attempt: {} ({} ago), {} calls, {} ms, {}",
            format_time(t),
            format_age(now - t),
            st.last_calls,
            st.last_duration_ms,
            if st.last_error.is_some() {
                "FAILED"
            } else {
                "ok"
            }
        );
    }
    match st.last_success {
        Some(t) => say!(
            "last success: {} ({} ago): {} users, {} groups, {} skipped users, {} skipped groups",
            format_time(t),
            format_age(now - t),
            st.users,
            st.groups,
            st.skipped_users,
            st.skipped_groups
        ),
        None => say!("last success: never"),
    }
    match &st.last_error {
        Some(e) => {
            let e = e.replace(['\n', '\r'], " ");
            say!("last error:   {e}");
            findings.stale.push(format!("the last refresh failed: {e}"));
        }
        None => say!("last error:   none"),
    }
    report_snapshot(cache_dir, now);
    if st.last_success.is_none() && st.last_error.is_none() {
        findings
            .stale
            .push("no successful refresh is recorded".to_owned());
    }
    if st.last_success.is_some() {
        for line in clash_lines(&st) {
            say!("{line}");
        }
    }
}

fn report_server(config: Config, findings: &mut Findings) {
    let servers = ClientBuilder::from_config(config.clone()).read_server_names();
    let server = if servers.len() > 1 {
        servers.join(", ")
    } else {
        server_label(&config)
    };
    let client = BlockingClient::new(
        ClientBuilder::from_config(config)
            .service_name(refresh::SERVICE_NAME)
            .connect_timeout(PING_TIMEOUT)
            .request_timeout(PING_TIMEOUT),
    );
    let started = std::time::Instant::now();
    match client.ping() {
        Ok(()) => say!(
            "server:       {server} reachable ({} ms{})",
            started.elapsed().as_millis(),
            match client.builder().health().answered_by() {
                Some(answered) if servers.len() > 1 => format!(", answered by {answered}"),
                _ => String::new(),
            }
        ),
        Err(e) => {
            let why = e.to_string().replace(['\n', '\r'], " ");
            say!("server:       {server} NOT reachable: {why}");
            findings.unreachable = Some(why);
        }
    }
}

/// The status lines about name clashes and local group members.
fn clash_lines(st: &RefreshStatus) -> Vec<String> {
    let mut lines = Vec::new();
    if st.group_name_clashes.is_empty() {
        lines.push("name clashes: none".to_owned());
    } else {
        let renamed = st
            .group_name_clashes
            .iter()
            .filter(|c| c.served_as.is_some())
            .count();
        lines.push(format!(
            "name clashes: {} NetAuth groups have the name of a local group: {} left out, \
             {renamed} renamed; {} users lost a supplementary group",
            st.group_name_clashes.len(),
            st.group_name_clashes.len() - renamed,
            st.users_without_clashing_groups
        ));
    }
    for c in &st.group_name_clashes {
        lines.push(match (&c.served_as, &c.rename_refused) {
            (Some(served_as), _) => format!(
                "  renamed:    group {:?} (gid {}) served as {served_as:?}",
                c.name, c.gid
            ),
            (None, refused) => format!(
                "  left out:   group {:?} (gid {}){}: {} users keep gid {} as primary group \
                 without a name for it (ls -l shows the number), {} users lost it as a \
                 supplementary group",
                c.name,
                c.gid,
                refused
                    .as_ref()
                    .map(|r| format!(" (the renamed name {r:?} is taken or too long)"))
                    .unwrap_or_default(),
                c.primary_users,
                c.gid,
                c.supplementary_users
            ),
        });
    }
    if st.local_group_members.is_empty() {
        lines.push("local groups: no NetAuth user is named in a local group line".to_owned());
    } else {
        lines.push(format!(
            "local groups: {} NetAuth users are named in local group lines and get those \
             groups from glibc:",
            st.local_group_members
                .iter()
                .map(|m| &m.user)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        ));
        for m in &st.local_group_members {
            lines.push(format!(
                "  member:     user {:?} of local group {:?}",
                m.user, m.group
            ));
        }
    }
    lines
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, from days since the epoch).
pub(crate) fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A short age such as `42 s`, `5 min`, `3 h 2 min`, `2 d 4 h`.
pub(crate) fn format_age(secs: i64) -> String {
    if secs < 0 {
        return "in the future: clock skew".to_owned();
    }
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs / 60 % 60),
        _ => format!("{} d {} h", secs / 86_400, secs / 3600 % 24),
    }
}

/// The published snapshot the cache was built from, on hosts that read one.
fn report_snapshot(cache_dir: &Path, now: i64) {
    if let Some(snap) = netauth_unix::refresh::snapshot_fetch::SnapshotState::load(cache_dir) {
        say!(
            "snapshot:     sequence {}, generated {} ({} ago), from {}",
            snap.sequence,
            format_time(snap.generated_at),
            format_age(now - snap.generated_at),
            snap.source
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_that_explains_the_others_wins() {
        let mut f = Findings::default();
        assert_eq!(f.exit_code(), 0);
        assert!(f.lines().is_empty());
        f.stale.push("old".into());
        assert_eq!(f.exit_code(), STALE);
        f.unreachable = Some("refused".into());
        assert_eq!(f.exit_code(), UNREACHABLE);
        f.cache_refused = Some("mode 0666".into());
        assert_eq!(f.exit_code(), CACHE_REFUSED);
        assert_eq!(f.lines().len(), 3);
        assert!(f.lines()[0].starts_with("the NSS module would refuse the cache: "));
        // The configuration is checked first and exits on its own.
        assert_eq!(CONFIG_INVALID, 2);
    }

    /// The man page and the README give every code and the setting.
    #[test]
    fn exit_codes_are_documented() {
        let read = |path: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let man = read("packaging/common/netauth-unix.8");
        let readme = read("README.md");
        for code in [STALE, CONFIG_INVALID, CACHE_REFUSED, UNREACHABLE] {
            assert!(
                man.contains(&format!(".TP\n.B {code}\n")),
                "{code} in the man page"
            );
            assert!(
                readme.contains(&format!("  | {code} | ")),
                "{code} in README.md"
            );
        }
        for text in [&man, &readme] {
            assert!(text.contains("status_max_age_s"));
            assert!(text.contains("the NSS module would refuse the cache"));
        }
    }

    #[test]
    fn clash_lines_name_every_clash() {
        use netauth_unix::refresh::status::{GroupNameClash, LocalGroupMember};
        let none = clash_lines(&RefreshStatus::default());
        assert_eq!(
            none,
            vec![
                "name clashes: none",
                "local groups: no NetAuth user is named in a local group line"
            ]
        );
        let st = RefreshStatus {
            group_name_clashes: vec![
                GroupNameClash {
                    name: "users".into(),
                    gid: 3300,
                    primary_users: 4,
                    supplementary_users: 2,
                    ..Default::default()
                },
                GroupNameClash {
                    name: "staff".into(),
                    gid: 3301,
                    served_as: Some("netauth-staff".into()),
                    ..Default::default()
                },
                GroupNameClash {
                    name: "adm".into(),
                    gid: 3302,
                    rename_refused: Some("netauth-adm".into()),
                    ..Default::default()
                },
            ],
            users_without_clashing_groups: 3,
            local_group_members: vec![
                LocalGroupMember {
                    user: "carol".into(),
                    group: "sudo".into(),
                },
                LocalGroupMember {
                    user: "carol".into(),
                    group: "adm\nx".into(),
                },
            ],
            ..Default::default()
        };
        let lines = clash_lines(&st);
        assert_eq!(lines.len(), 7, "{lines:#?}");
        assert!(lines[0].contains("3 NetAuth groups") && lines[0].contains("2 left out"));
        assert!(lines[0].contains("1 renamed") && lines[0].contains("3 users lost"));
        assert!(lines[1].contains("left out:   group \"users\" (gid 3300)"));
        assert!(lines[1].contains("4 users keep gid 3300"));
        assert!(lines[2].contains("served as \"netauth-staff\""));
        assert!(lines[3].contains("\"netauth-adm\" is taken"));
        assert!(lines[4].contains("1 NetAuth users"));
        assert!(lines[5].contains("user \"carol\" of local group \"sudo\""));
        // A hostile local group name cannot break the line.
        assert!(lines.iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_750_000_000), "2025-06-15 15:06:40 UTC");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(format_age(5), "5 s");
        assert_eq!(format_age(300), "5 min");
        assert_eq!(format_age(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(format_age(2 * 86_400 + 4 * 3600), "2 d 4 h");
        assert!(format_age(-5).contains("skew"));
    }
}
