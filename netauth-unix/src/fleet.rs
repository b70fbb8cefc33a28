//! `netauth-unix publish` and `netauth-unix keygen`: the command-line side
//! of `netauth_unix::refresh::publish`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use netauth_core::config::{Config, DEFAULT_CONFIG_PATH};
use netauth_unix::refresh::publish::{self, DEFAULT_KEY_PATH};

use crate::fail;
use crate::output::{say, tell};

#[derive(Args)]
pub struct PublishArgs {
    /// NetAuth config file (server, TLS, [unix.refresh] request_timeout_ms and search_cap).
    #[arg(long, short, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Folder to write snapshot.json and snapshot.json.sig in (served by a web server).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The publisher's private key (made by `netauth-unix keygen`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_KEY_PATH)]
    key: PathBuf,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to create the private key (mode 0600; an existing file is never replaced).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_KEY_PATH)]
    out: PathBuf,
}

pub fn run_publish(args: &PublishArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    match publish::publish(&config, &args.out, &args.key) {
        Ok(r) => {
            for problem in &r.expansion_problems {
                tell!("netauth-unix: warning: {problem}");
            }
            let what = if r.written {
                "published"
            } else {
                "unchanged, kept"
            };
            tell!(
                "netauth-unix: {what} snapshot {} in {}: {} entities, {} groups, {} bytes, \
                 {} calls, {:.2} s",
                r.sequence,
                r.out.display(),
                r.entities,
                r.groups,
                r.bytes,
                r.calls,
                r.duration.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, format!("publish failed: {e}")),
    }
}

pub fn run_keygen(args: &KeygenArgs) -> ExitCode {
    match publish::keygen(&args.out) {
        Ok(public) => {
            tell!(
                "netauth-unix: private key written to {} (keep it on the publishers only)",
                args.out.display()
            );
            tell!("netauth-unix: add to [unix.refresh] of every host that reads the snapshot:");
            say!("publisher_key = \"{public}\"");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, format!("cannot create {}: {e}", display(&args.out))),
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
