//! The test server as a process, for tests in other languages and for
//! end-to-end set-ups:
//!
//! ```text
//! netauth-testserver --fixture FILE [--listen 127.0.0.1:PORT]
//!                    [--tls-dir DIR | --plain] [--read-only]
//!                    [--token-lifetime SECONDS] [--log-calls] [--ignore-stdin]
//! ```
//!
//! `--tls-dir DIR` writes `DIR/tls.pem` and `DIR/tls.key` (a certificate for
//! localhost and 127.0.0.1) and serves TLS; `--plain` serves plain text
//! (the default). Prints `LISTENING 127.0.0.1:PORT` on stdout when ready,
//! then serves until SIGTERM or SIGINT, or until stdin closes (unless
//! `--ignore-stdin`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use netauth_testserver::{generate_tls_identity, Fixture, Options, TestServer};

struct Args {
    fixture: Option<PathBuf>,
    listen: SocketAddr,
    tls_dir: Option<PathBuf>,
    read_only: bool,
    token_lifetime: Option<Duration>,
    log_calls: bool,
    ignore_stdin: bool,
}

const USAGE: &str = "usage: netauth-testserver --fixture FILE [--listen 127.0.0.1:PORT] \
[--tls-dir DIR | --plain] [--read-only] [--token-lifetime SECONDS] [--log-calls] [--ignore-stdin]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        fixture: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_dir: None,
        read_only: false,
        token_lifetime: None,
        log_calls: false,
        ignore_stdin: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--fixture" => args.fixture = Some(PathBuf::from(value("--fixture")?)),
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v
                    .parse()
                    .map_err(|_| format!("--listen {v}: not an address like 127.0.0.1:1729"))?;
            }
            "--tls-dir" => args.tls_dir = Some(PathBuf::from(value("--tls-dir")?)),
            "--plain" => args.tls_dir = None,
            "--read-only" => args.read_only = true,
            "--token-lifetime" => {
                let v = value("--token-lifetime")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--token-lifetime {v}: not a number of seconds"))?;
                args.token_lifetime = Some(Duration::from_secs_f64(secs));
            }
            "--log-calls" => args.log_calls = true,
            "--ignore-stdin" => args.ignore_stdin = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut opts = Options {
        read_only: args.read_only,
        ..Options::default()
    };
    if let Some(lifetime) = args.token_lifetime {
        opts.token_lifetime = lifetime;
    }
    if let Some(path) = &args.fixture {
        opts.fixture = Some(Fixture::load(path).map_err(|e| e.to_string())?);
    }
    if let Some(dir) = &args.tls_dir {
        let id = generate_tls_identity(&["localhost", "127.0.0.1"]);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
        };
        write("tls.pem", &id.cert_pem)?;
        write("tls.key", &id.key_pem)?;
        opts.tls = Some(id);
    }
    let server = TestServer::try_start_on(args.listen, opts)?;
    server.set_log_calls(args.log_calls);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING {}", server.addr()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    if !args.ignore_stdin {
        let tx = done_tx.clone();
        // Detached on purpose: it only reads stdin until EOF, and the
        // process exits right after.
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = tx.send("stdin closed");
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let signals = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(t), Ok(i)) => Ok((t, i)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    });
    let (mut term, mut int) = signals.map_err(|e| format!("cannot watch signals: {e}"))?;
    let reason = runtime.block_on(async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            r = done_rx.recv() => r.unwrap_or("stdin closed"),
        }
    });
    eprintln!("netauth-testserver: stopping ({reason})");
    server.shutdown();
    drop(done_tx);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netauth-testserver: {e}");
            ExitCode::FAILURE
        }
    }
}
