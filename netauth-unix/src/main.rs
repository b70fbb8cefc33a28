//! `netauth-unix`: fills and inspects the cache the NSS module answers from.
//!
//! ```text
//! netauth-unix refresh [--config PATH] [--force] [--verbose]
//! netauth-unix status  [--config PATH]
//! netauth-unix ssh-keys USER [--type TYPE] [--config PATH]
//! netauth-unix publish --out DIR [--key PATH] [--config PATH]
//! netauth-unix keygen [--out PATH]
//! netauth-unix check   USER [--service NAME] [--password-stdin] [--config PATH]
//! netkeys --ID USER [--type TYPE]      (the same, as NetAuth's netkeys)
//! ```
//!
//! Exit codes: 0 success; 1 the refresh failed; 2 bad usage or
//! configuration; `status` has its own (see the `status` module). Messages
//! go to stderr, one line per problem; `status` prints its report on stdout.
//! `status` lives in its own module; a new command gets one too, plus one
//! variant of [`Command`] and one arm in `main`.
//! A closed pipe (`netauth-unix status | head -1`) never aborts a command:
//! output to it is dropped and the exit status is the one the command would
//! have had (see the `output` module).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use netauth_core::config::{Config, DEFAULT_CONFIG_PATH};
use netauth_unix::refresh::{self, server_label, Notice, RefreshOptions, RefreshSettings};
use netauth_unix::ssh_keys::{self, SshKeysArgs};

mod check;
mod fleet;
mod offline_status;
mod output;
mod status;

use output::tell;

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
    /// whether the server answers; the exit status says whether all is well
    /// (0) or what is wrong first: 1 stale cache or failed refresh,
    /// 2 invalid configuration, 3 a cache the NSS module would refuse,
    /// 4 server unreachable.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Print a user's public keys, one per line, for sshd's
    /// AuthorizedKeysCommand (also NetAuth's netkeys: --ID USER).
    SshKeys(SshKeysArgs),
    /// Say what a login of USER would meet right now: local account or not,
    /// served by NSS, what the server says (or that it is unreachable), the
    /// access rule of the service, the offline state, cached credentials.
    /// Exit 0 when a login would pass, 1 when not.
    Check {
        #[command(flatten)]
        common: Common,
        /// The user to check.
        user: String,
        /// The PAM service whose access rule applies (and whose stack
        /// --password-stdin runs).
        #[arg(long, default_value = "login", value_name = "NAME")]
        service: String,
        /// Read a password (first line of standard input) and run a real PAM
        /// authentication and account check through the service's stack.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Fetch the directory from NetAuth once and write a signed snapshot
    /// (snapshot.json, snapshot.json.sig) for hosts whose [unix.refresh]
    /// source points at it; an unchanged directory leaves the files as they are.
    Publish(fleet::PublishArgs),
    /// Make the publisher's Ed25519 key pair: the private key file (0600)
    /// and, on stdout, the publisher_key line for the hosts.
    Keygen(fleet::KeygenArgs),
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
        Command::Status { common } => status::run(&common.config),
        Command::SshKeys(args) => ssh_keys::main(&args),
        Command::Check {
            common,
            user,
            service,
            password_stdin,
        } => check::run(&check::Request {
            config: &common.config,
            user: &user,
            service: &service,
            password_stdin,
        }),
        Command::Publish(args) => fleet::run_publish(&args),
        Command::Keygen(args) => fleet::run_keygen(&args),
    }
}

pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    // One line, whatever the message holds.
    let line = message.to_string().replace(['\n', '\r'], " ");
    tell!("netauth-unix: {line}");
    ExitCode::from(code)
}

fn load_config(path: &Path) -> Result<(Config, RefreshSettings), ExitCode> {
    let config = Config::load(path).map_err(|e| fail(2, e))?;
    let settings = RefreshSettings::from_config(&config);
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
            if let Some(snap) = &report.snapshot {
                tell!(
                    "netauth-unix: refreshed {} from snapshot {} of {}{}: {} users, {} groups \
                     ({} user-private), {} entities and {} groups in {} bytes, {:.2} s",
                    report.cache_path.display(),
                    snap.sequence,
                    snap.source,
                    if snap.not_modified {
                        " (not modified)"
                    } else {
                        ""
                    },
                    report.users,
                    report.groups,
                    report.private_groups,
                    report.entities_fetched,
                    report.groups_fetched,
                    snap.bytes,
                    report.duration.as_secs_f64(),
                );
                return ExitCode::SUCCESS;
            }
            tell!(
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
        tell!("netauth-unix: warning: {n}");
    }
    let shown = if verbose { others.len() } else { NOTICE_LIMIT };
    for n in others.iter().take(shown) {
        tell!("netauth-unix: warning: {n}");
    }
    if others.len() > shown {
        tell!(
            "netauth-unix: warning: ... and {} more (use --verbose to see all)",
            others.len() - shown
        );
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
}
