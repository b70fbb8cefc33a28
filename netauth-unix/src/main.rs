//! `netauth-unix`: fills and inspects the cache the NSS module answers from.
//!
//! ```text
//! netauth-unix refresh [--config PATH] [--force] [--verbose]
//! netauth-unix status  [--config PATH]
//! netauth-unix ssh-keys USER [--type TYPE] [--config PATH]
//! netkeys --ID USER [--type TYPE]      (the same, as NetAuth's netkeys)
//! ```
//!
//! Exit codes: 0 success; 1 the refresh failed, or `status` found no usable
//! cache; 2 bad usage or configuration. Messages go to stderr, one line per
//! problem; `status` prints its report on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use netauth_cache::{CacheView, CACHE_FILE_NAME};
use netauth_core::blocking::BlockingClient;
use netauth_core::config::{Config, DEFAULT_CONFIG_PATH};
use netauth_core::ClientBuilder;
use netauth_unix::refresh::{
    self, server_label, Notice, RefreshError, RefreshOptions, RefreshSettings, RefreshStatus,
};
use netauth_unix::ssh_keys::{self, SshKeysArgs};

/// Deadline of the reachability check of `status`.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Notices printed without --verbose; the rest are counted.
const NOTICE_LIMIT: usize = 50;

#[derive(Parser)]
#[command(
    name = "netauth-unix",
    version,
    about = "Fill and inspect the NetAuth user and group cache that nss_netauth answers from"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch all users and groups from NetAuth and replace the cache atomically.
    /// On any failure the old cache stays as it was.
    Refresh {
        #[command(flatten)]
        common: Common,
        /// Write the cache even if it loses more users than max_shrink_percent allows.
        #[arg(long)]
        force: bool,
        /// Print every skipped or cleaned entry (default: the first 50).
        #[arg(long, short)]
        verbose: bool,
    },
    /// Show the cache's age and counts, the last refresh's outcome and
    /// whether the server answers.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Print a user's public keys, one per line, for sshd's
    /// AuthorizedKeysCommand (also NetAuth's netkeys: --ID USER).
    SshKeys(SshKeysArgs),
}

#[derive(Args)]
struct Common {
    /// NetAuth config file.
    #[arg(long, short, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(ssh_keys::rewrite_args(std::env::args_os()));
    match cli.command {
        Command::Refresh {
            common,
            force,
            verbose,
        } => run_refresh(&common.config, force, verbose),
        Command::Status { common } => run_status(&common.config),
        Command::SshKeys(args) => ssh_keys::main(&args),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    // One line, whatever the message holds.
    let line = message.to_string().replace(['\n', '\r'], " ");
    eprintln!("netauth-unix: {line}");
    ExitCode::from(code)
}

fn load_config(path: &Path) -> Result<(Config, RefreshSettings), ExitCode> {
    let config = Config::load(path).map_err(|e| fail(2, e))?;
    let settings = RefreshSettings::from_config(&config).map_err(|e| fail(2, e))?;
    Ok((config, settings))
}

fn run_refresh(config_path: &Path, force: bool, verbose: bool) -> ExitCode {
    let (config, _) = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match refresh::refresh_blocking(&config, RefreshOptions { force }) {
        Ok(report) => {
            print_notices(&report.notices, verbose);
            eprintln!(
                "netauth-unix: refreshed {} from {}: {} users, {} groups ({} user-private), \
                 {} entities and {} groups fetched in {} calls, {:.2} s",
                report.cache_path.display(),
                server_label(&config),
                report.users,
                report.groups,
                report.private_groups,
                report.entities_fetched,
                report.groups_fetched,
                report.calls(),
                report.duration.as_secs_f64(),
            );
            ExitCode::SUCCESS
        }
        Err(e @ RefreshError::Settings(_)) => fail(2, e),
        Err(e) => fail(1, format!("refresh failed: {e}")),
    }
}

/// Whether a notice is printed whatever the limit: name clashes and local
/// group lines naming NetAuth users change what users can do on the host.
fn always_shown(n: &Notice) -> bool {
    matches!(
        n,
        Notice::GroupNameClash { .. }
            | Notice::SupplementaryGroupsLeftOut { .. }
            | Notice::LocalGroupMember { .. }
    )
}

fn print_notices(notices: &[Notice], verbose: bool) {
    let (always, others): (Vec<&Notice>, Vec<&Notice>) =
        notices.iter().partition(|n| always_shown(n));
    for n in always {
        eprintln!("netauth-unix: warning: {n}");
    }
    let shown = if verbose { others.len() } else { NOTICE_LIMIT };
    for n in others.iter().take(shown) {
        eprintln!("netauth-unix: warning: {n}");
    }
    if others.len() > shown {
        eprintln!(
            "netauth-unix: warning: ... and {} more (use --verbose to see all)",
            others.len() - shown
        );
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

fn run_status(config_path: &Path) -> ExitCode {
    let (config, settings) = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = unix_now();
    let cache_path = settings.cache_dir.join(CACHE_FILE_NAME);
    let mut cache_ok = false;
    println!("cache:        {}", cache_path.display());
    // The same checks as every reader: a FIFO or a file others may write
    // there is reported, not read.
    match refresh::read_cache(&cache_path) {
        Ok(bytes) => match CacheView::parse(&bytes) {
            Ok(view) => {
                cache_ok = true;
                let generated = view.generated_at();
                println!(
                    "written:      {} ({} ago)",
                    format_time(generated),
                    format_age(now - generated)
                );
                println!("users:        {}", view.user_count());
                println!("groups:       {}", view.group_count());
                if let Ok(source) = view.source() {
                    println!("source:       {source}");
                }
            }
            Err(e) => println!("state:        UNUSABLE ({e})"),
        },
        Err(e) if e.is_untrusted() => println!("state:        UNTRUSTED ({e})"),
        Err(e) => println!("state:        MISSING ({e})"),
    }

    match RefreshStatus::load(&settings.cache_dir) {
        Ok(Some(st)) => {
            if let Some(t) = st.last_attempt {
                println!(
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
                Some(t) => println!(
                    "last success: {} ({} ago): {} users, {} groups, {} skipped users, {} skipped groups",
                    format_time(t),
                    format_age(now - t),
                    st.users,
                    st.groups,
                    st.skipped_users,
                    st.skipped_groups
                ),
                None => println!("last success: never"),
            }
            match &st.last_error {
                Some(e) => println!("last error:   {}", e.replace(['\n', '\r'], " ")),
                None => println!("last error:   none"),
            }
            if st.last_success.is_some() {
                for line in clash_lines(&st) {
                    println!("{line}");
                }
            }
        }
        Ok(None) => println!("last attempt: never (no status file)"),
        Err(e) => println!("last attempt: unknown (status file unreadable: {e})"),
    }

    let server = server_label(&config);
    let client = BlockingClient::new(
        ClientBuilder::from_config(config)
            .service_name(refresh::SERVICE_NAME)
            .connect_timeout(PING_TIMEOUT)
            .request_timeout(PING_TIMEOUT),
    );
    let started = std::time::Instant::now();
    match client.ping() {
        Ok(()) => println!(
            "server:       {server} reachable ({} ms)",
            started.elapsed().as_millis()
        ),
        Err(e) => println!(
            "server:       {server} NOT reachable: {}",
            e.to_string().replace(['\n', '\r'], " ")
        ),
    }

    if cache_ok {
        ExitCode::SUCCESS
    } else {
        fail(1, format!("no usable cache at {}", cache_path.display()))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, from days since the epoch).
fn format_time(t: i64) -> String {
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
fn format_age(secs: i64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
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
