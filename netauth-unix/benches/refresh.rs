//! Refresh benchmark: wall time, gRPC calls and peak memory of
//! `netauth-unix refresh` against the test server (TLS, in this process) at
//! 1,000, 10,000 and 20,000 entities. Prints a markdown table.
//!
//! Run: `cargo bench -p netauth-unix --bench refresh`
//! (optional arguments: entity counts, e.g. `-- 1000 50000`; `-- trusted`
//! prints only the second table).
//!
//! A second table gives the cost of the trusted-file checks
//! (`netauth_cache::trusted`) against a plain read of the same file:
//! the config, `/etc/passwd` and the open of a cache as `nss_netauth` maps
//! it, each per call, in this process.
//!
//! Each refresh runs as a child process so that its peak resident memory
//! (`ru_maxrss` from `wait4`) is its own; the server's is not counted. The
//! child is started by a small launcher process that the bench starts
//! before it builds any directory: Linux gives a process started by
//! `posix_spawn` (or `fork`) from this bench, once it holds the test
//! server's directory, the bench's own high-water mark as its starting
//! `ru_maxrss` (the kernel keeps the larger of the old and new address
//! space's at `exec`), so a child of the bench itself reported the bench's
//! peak whenever that was higher than its own.
//!
//! To see what the peak is made of, `REFRESH_BENCH_WRAPPER` runs each
//! refresh under a command, once per entity count, with its stderr shown,
//! e.g. `REFRESH_BENCH_WRAPPER="valgrind --tool=massif
//! --massif-out-file=/tmp/massif.%p" cargo bench -p netauth-unix --bench
//! refresh -- 100000` (the figures printed are then the wrapper's).
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark program, not shipped: a failed setup must stop it"
)]

#[path = "../tests/refresh_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netauth_testserver::{generate_tls_identity, Options, TestServer};
use netauth_unix::refresh::RefreshStatus;
use support::{seed_directory, RefreshEnv, FETCHED_GROUPS};

const RUNS: usize = 3;

struct Run {
    wall: Duration,
    max_rss_kib: i64,
}

/// The command (and its arguments) each refresh runs under, from
/// `REFRESH_BENCH_WRAPPER`; empty when unset.
fn wrapper() -> Vec<String> {
    std::env::var("REFRESH_BENCH_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The launcher: a copy of this program started before the test server
/// holds any directory, which runs the refreshes it is asked for (one
/// config path a line on its stdin) and answers `WALL_NANOS MAX_RSS_KIB`
/// a line.
struct Launcher {
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
    _child: std::process::Child,
}

const LAUNCHER_ARG: &str = "--refresh-launcher";

impl Launcher {
    fn start() -> Launcher {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .arg(LAUNCHER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the launcher");
        Launcher {
            input: child.stdin.take().expect("launcher stdin"),
            output: std::io::BufReader::new(child.stdout.take().expect("launcher stdout")),
            _child: child,
        }
    }

    fn refresh_once(&mut self, config: &Path) -> Run {
        use std::io::{BufRead, Write};
        writeln!(self.input, "{}", config.display()).expect("ask the launcher");
        self.input.flush().expect("ask the launcher");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("launcher answer");
        let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (nanos, kib) = fields
            .next()
            .flatten()
            .zip(fields.next().flatten())
            .ok_or(line)
            .expect("a launcher answer `WALL_NANOS MAX_RSS_KIB` (did the refresh fail?)");
        Run {
            wall: Duration::from_nanos(nanos),
            max_rss_kib: kib as i64,
        }
    }
}

/// The launcher's side of [`Launcher`].
fn launcher_main() {
    use std::io::{BufRead, Write};
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let run = refresh_once(Path::new(&line.expect("read a config path")));
        let mut out = stdout.lock();
        writeln!(out, "{} {}", run.wall.as_nanos(), run.max_rss_kib).expect("answer");
        out.flush().expect("answer");
    }
}

/// Runs `netauth-unix refresh` once and measures it (in the launcher).
fn refresh_once(config: &Path) -> Run {
    let wrapper = wrapper();
    let binary = env!("CARGO_BIN_EXE_netauth-unix");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let started = Instant::now();
    let child = command
        .args(["refresh", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(if wrapper.is_empty() {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("start netauth-unix");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both pointers are valid for
    // writes for the duration of the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "netauth-unix refresh failed (status {status})"
    );
    drop(child);
    Run {
        wall,
        max_rss_kib: usage.ru_maxrss,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time per call of `f`, over 7 batches of `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let batches: Vec<Duration> = (0..7)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..n {
                f();
            }
            started.elapsed() / n
        })
        .collect();
    median(batches)
}

/// Plain read vs trusted read of the files the modules and the refresh read.
fn trusted_open_table() {
    use netauth_cache::trusted::{open_trusted, read_trusted, TrustRule};
    use std::hint::black_box;

    let server = TestServer::start(Options::default());
    seed_directory(server.state(), 100);
    let env = RefreshEnv::new(&server, "");
    refresh_once(&env.config);
    let cache = env.cache_path();
    let passwd = Path::new("/etc/passwd");
    let n = 20_000;
    let rows = [
        (
            "config.toml (read whole)",
            std::fs::metadata(&env.config).map(|m| m.len()).unwrap_or(0),
            per_call(n, || {
                black_box(std::fs::read(&env.config).expect("read"));
            }),
            per_call(n, || {
                black_box(read_trusted(&env.config, &TrustRule::CONFIG).expect("trusted"));
            }),
        ),
        (
            "/etc/passwd (read whole)",
            std::fs::metadata(passwd).map(|m| m.len()).unwrap_or(0),
            per_call(n, || {
                black_box(std::fs::read(passwd).expect("read"));
            }),
            per_call(n, || {
                black_box(read_trusted(passwd, &TrustRule::LOCAL_ACCOUNTS).expect("trusted"));
            }),
        ),
        (
            "nss.cache (open + fstat, as NSS before mmap)",
            std::fs::metadata(&cache).map(|m| m.len()).unwrap_or(0),
            per_call(n, || {
                let file = std::fs::File::open(&cache).expect("open");
                black_box(file.metadata().expect("fstat"));
            }),
            per_call(n, || {
                let file = open_trusted(&cache, &TrustRule::CACHE).expect("trusted");
                black_box(file.metadata());
            }),
        ),
    ];
    println!("Trusted-file checks, per call (median of 7 batches of {n}):");
    println!();
    println!("| file | bytes | plain | trusted | added |");
    println!("|---|---:|---:|---:|---:|");
    for (what, bytes, plain, trusted) in rows {
        println!(
            "| {what} | {bytes} | {:.2} µs | {:.2} µs | {:.2} µs |",
            plain.as_secs_f64() * 1e6,
            trusted.as_secs_f64() * 1e6,
            (trusted.as_secs_f64() - plain.as_secs_f64()) * 1e6,
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == LAUNCHER_ARG) {
        launcher_main();
        return;
    }
    let mut launcher = Launcher::start();
    if std::env::args().any(|a| a == "trusted") {
        trusted_open_table();
        return;
    }
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1_000, 10_000, 20_000]
    } else {
        counts
    };

    let mut rows = Vec::new();
    for &n in &counts {
        let server = TestServer::start(Options {
            tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
            ..Default::default()
        });
        seed_directory(server.state(), n);
        let env = RefreshEnv::new(&server, "");
        let runs_per_count = if wrapper().is_empty() { RUNS } else { 1 };
        let runs: Vec<Run> = (0..runs_per_count)
            .map(|_| launcher.refresh_once(&env.config))
            .collect();
        let status = RefreshStatus::load(&env.cache_dir())
            .expect("status file")
            .expect("status file present");
        assert_eq!(status.users, n, "every entity served");
        let cache_bytes = std::fs::metadata(env.cache_path()).expect("cache").len();
        let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        let max_wall = walls.iter().max().copied().unwrap_or_default();
        let peak_kib = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
        rows.push(format!(
            "| {n} | {} | {:.0} ms | {:.0} ms | {} | {:.1} MiB | {:.2} MiB |",
            FETCHED_GROUPS,
            median(walls).as_secs_f64() * 1000.0,
            max_wall.as_secs_f64() * 1000.0,
            status.last_calls,
            peak_kib as f64 / 1024.0,
            cache_bytes as f64 / (1024.0 * 1024.0),
        ));
    }

    println!("`netauth-unix refresh` against the test server over TLS (release build, {RUNS} runs each).");
    println!();
    println!("| entities | groups | wall time (median) | wall time (max) | gRPC calls | peak RSS | cache size |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!();
    trusted_open_table();
}
