//! NSS benchmark: `nss_netauth` vs `nss_files` vs Debian's `libnss-cache`,
//! the same generated directory in each, looked up through glibc in private
//! mount namespaces, one run. Prints a markdown table (docs/benchmarks.md,
//! section "NSS lookups"). Not a test; run it with `bash scripts/bench-nss.sh`
//! (as root: it mounts inside `unshare -m`).
//!
//! ```text
//! nss_bench [--users N] [--groups N] [--budget-ms MS] [--fresh N] [--rounds N]
//!           [--variants netauth,floor,files,cache] [--callgrind LOOKUPS]
//!           --module PATH
//!     generates the directory, writes the three sources, then runs each
//!     module in its own namespace, ROUNDS times in turn, and prints the
//!     table. MS is the time per operation and module (split over the
//!     rounds), N fresh processes per module. PATH is the release build of
//!     libnss_netauth.so (copied, so a concurrent build cannot swap it).
//!     `floor` is a module answering one fixed entry (src/floor_nss.c,
//!     compiled here with `cc`): what glibc's dispatch costs by itself.
//!     With --callgrind, each module's lookups are also counted in
//!     instructions under valgrind (LOOKUPS per operation, and one first
//!     lookup; nss_netauth and the floor only): repeatable where
//!     wall-clock time is not. NSS_BENCH_KEEP_CALLGRIND=DIR keeps the
//!     callgrind files there, for `callgrind_annotate`.
//!     NSS_BENCH_HOT_KEYS=N times lookups of the first N keys only (their
//!     entries then stay in the CPU caches): a lookup without its misses.
//! nss_bench count OP N        N lookups of OP, for callgrind
//! nss_bench measure VARIANT USERS GROUPS MS CALLS LOOPS FRESH SEED check|no-check C_PROBE
//!     one round of one module, inside its namespace; C_PROBE is the C
//!     program (src/first_lookup.c) of the fresh C processes
//! nss_bench first NAME        one lookup in a fresh process
//! nss_bench index-check       is libnss-cache using our index files?
//! nss_bench prepare DIR USERS GROUPS
//!     only writes DIR/etc/* and DIR/nss.cache, for looking around by hand
//! ```
//!
//! Each namespace sees: a tmpfs over /var/lib holding only
//! /var/lib/netauth/nss.cache (root, 0644, as the refresh installs it); an
//! overlay over /etc whose upper layer holds the generated passwd, group,
//! passwd.cache, group.cache and the libnss-cache index files (the host's
//! /etc gains nothing: libnss-cache's paths are fixed and do not exist
//! there, so a bind mount has nothing to cover); the variant's
//! /etc/nsswitch.conf naming only that one module; nscd's socket hidden.
//! The same layout for all three, so path walks cost the same.

use netauth_cache::{encode, CacheContent, UnixGroup, UnixUser, CACHE_PATH};
use netauth_e2e::nss::{group_line, passwd_line, require_root, user};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Failure = String;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

const VARIANTS: [Variant; 4] = [
    Variant::Netauth,
    Variant::Floor,
    Variant::Files,
    Variant::Cache,
];

/// The floor module's C source (see the file): compiled by the benchmark.
const FLOOR_SOURCE: &str = include_str!("../floor_nss.c");
/// The fresh C program of the "first lookup in a fresh C program" row.
const FIRST_LOOKUP_C_SOURCE: &str = include_str!("../first_lookup.c");

/// Big enough for the largest generated group through any module
/// (libnss-cache's getgrgid_r asks for at least 1 MiB).
const BUFFER_LEN: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["measure", variant, users, groups, budget_ms, max_calls, max_loops, fresh, seed, check, c_probe] => {
            (|| {
                let round = Round {
                    budget: Duration::from_millis(parse(budget_ms)?.into()),
                    max_calls: parse(max_calls)? as usize,
                    max_loops: parse(max_loops)? as usize,
                    fresh: parse(fresh)? as usize,
                    seed: parse(seed)?.into(),
                };
                measure(
                    Variant::parse(variant)?,
                    parse(users)?,
                    parse(groups)?,
                    &round,
                    *check == "check",
                    Path::new(c_probe),
                )
            })()
        }
        ["first", name] => first(name),
        ["count", op, n, users, groups] => {
            (|| count(op, parse(n)?, parse(users)?, parse(groups)?))()
        }
        ["index-check"] => index_check(),
        ["prepare", dir, users, groups] => {
            (|| prepare(Path::new(dir), parse(users)?, parse(groups)?))()
        }
        _ => Options::parse(&args).and_then(|o| run(&o)),
    };
    if let Err(e) = result {
        eprintln!("nss_bench: {e}");
        std::process::exit(1);
    }
}

fn parse(s: &str) -> Result<u32, Failure> {
    s.replace('_', "")
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))
}

struct Options {
    users: u32,
    groups: u32,
    budget_ms: u32,
    fresh: u32,
    rounds: u32,
    module: PathBuf,
    /// The modules to run, in table order.
    variants: Vec<Variant>,
    /// Lookups per operation counted under callgrind (0: none).
    callgrind: u32,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Options, Failure> {
        let mut o = Options {
            users: 100_000,
            groups: 10_000,
            budget_ms: 2_000,
            fresh: 150,
            rounds: 5,
            module: PathBuf::new(),
            variants: VARIANTS.to_vec(),
            callgrind: 0,
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value (usage: see the source)"))?;
            match flag {
                "--users" => o.users = parse(value)?,
                "--groups" => o.groups = parse(value)?,
                "--budget-ms" => o.budget_ms = parse(value)?,
                "--fresh" => o.fresh = parse(value)?,
                "--rounds" => o.rounds = parse(value)?.max(1),
                "--module" => o.module = PathBuf::from(value),
                "--variants" => {
                    let wanted = value
                        .split(',')
                        .map(Variant::parse)
                        .collect::<Result<Vec<_>, _>>()?;
                    o.variants = VARIANTS
                        .into_iter()
                        .filter(|v| wanted.contains(v))
                        .collect();
                }
                "--callgrind" => o.callgrind = parse(value)?,
                _ => return Err(format!("unknown argument {flag} (usage: see the source)")),
            }
        }
        ensure!(
            o.module.is_file(),
            "--module {:?}: no such file; build it with `cargo build --release -p nss_netauth` \
             or run scripts/bench-nss.sh",
            o.module
        );
        ensure!(
            o.users >= 10 && o.groups >= 10,
            "need at least 10 users and 10 groups"
        );
        Ok(o)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Netauth,
    /// A module answering one fixed entry: glibc's own cost.
    Floor,
    Files,
    Cache,
}

impl Variant {
    fn parse(s: &str) -> Result<Variant, Failure> {
        VARIANTS
            .into_iter()
            .find(|v| v.service() == s)
            .ok_or_else(|| format!("unknown variant {s:?}"))
    }

    /// The service name in nsswitch.conf.
    fn service(self) -> &'static str {
        match self {
            Variant::Netauth => "netauth",
            Variant::Floor => "floor",
            Variant::Files => "files",
            Variant::Cache => "cache",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Variant::Netauth => "nss_netauth",
            Variant::Floor => "floor",
            Variant::Files => "nss_files",
            Variant::Cache => "libnss-cache",
        }
    }

    fn nsswitch(self) -> String {
        format!("passwd: {0}\ngroup: {0}\n", self.service())
    }
}

// ---- the generated directory ----------------------------------------------

/// Deterministic xorshift64*: the same directory in every process.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FIRST_UID: u32 = 100_000;
const FIRST_GID: u32 = 200_000;

/// How the groups split, for `groups` groups: one department per 250
/// groups, one project per 10, the rest teams.
fn group_kinds(groups: u32) -> (u32, u32, u32) {
    let departments = (groups / 250).max(1);
    let projects = (groups / 10).max(1);
    (departments, projects, groups - departments - projects)
}

/// `users` users and `groups` groups shaped like an organisation: every
/// user is in one department (its primary group; ~2,500 members each at
/// 100,000 users), one project (~100 members) and 2 to 4 teams (~30
/// members, Poisson-spread), so 4 to 6 groups each, 5 on average.
fn directory(users: u32, groups: u32) -> CacheContent {
    let (departments, projects, teams) = group_kinds(groups);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let group_name = |g: u32| group_name_at(groups, g);
    let mut members: Vec<Vec<String>> = vec![Vec::new(); groups as usize];
    let mut user_groups = BTreeMap::new();
    let mut list = Vec::with_capacity(users as usize);
    for i in 0..users {
        let name = format!("user{i}");
        let department = rng.below(departments as usize) as u32;
        let project = departments + rng.below(projects as usize) as u32;
        let mut mine = vec![department, project];
        let wanted = 2 + 2 + rng.below(3);
        while mine.len() < wanted && teams > 0 {
            let team = departments + projects + rng.below(teams as usize) as u32;
            if !mine.contains(&team) {
                mine.push(team);
            }
        }
        for &g in &mine {
            members[g as usize].push(name.clone());
        }
        let mut u = user(
            &name,
            FIRST_UID + i,
            FIRST_GID + department,
            &format!("Bench User {i}"),
        );
        u.home = format!("/home/{name}");
        user_groups.insert(name, mine.iter().map(|g| FIRST_GID + g).collect());
        list.push(u);
    }
    let groups = members
        .into_iter()
        .enumerate()
        .map(|(g, members)| UnixGroup {
            name: group_name(g as u32),
            gid: FIRST_GID + g as u32,
            members,
        })
        .collect();
    CacheContent {
        users: list,
        groups,
        user_groups,
        user_keys: Default::default(),
        generated_at: 1_750_000_000,
        source: "nss-bench".to_owned(),
    }
}

/// min / median / max members per group.
/// "N kind groups of MIN–MAX members (median M)" for the groups whose
/// name starts with `kind`.
fn group_sizes(content: &CacheContent, kind: &str) -> String {
    let mut sizes: Vec<usize> = content
        .groups
        .iter()
        .filter(|g| g.name.starts_with(kind))
        .map(|g| g.members.len())
        .collect();
    sizes.sort_unstable();
    match (sizes.first(), sizes.get(sizes.len() / 2), sizes.last()) {
        (Some(min), Some(median), Some(max)) => format!(
            "{} {kind} groups of {min}–{max} members (median {median})",
            sizes.len()
        ),
        _ => format!("no {kind} groups"),
    }
}

/// The 1-minute load average: other work on the machine skews timings.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

// ---- libnss-cache's files --------------------------------------------------

/// A file of `lines` (each without its newline) and, per line, the byte
/// offset it starts at.
fn lines_with_offsets(lines: impl Iterator<Item = String>) -> (Vec<u8>, Vec<u64>) {
    let mut text = Vec::new();
    let mut offsets = Vec::new();
    for line in lines {
        offsets.push(text.len() as u64);
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    (text, offsets)
}

/// A libnss-cache index (`.ixname`, `.ixuid`, `.ixgid`), as nsscache's
/// `FilesCache.WriteIndex` writes it and libnss-cache 0.18's
/// `_nss_cache_bsearch2` reads it: fixed-size records sorted by the key's
/// bytes (`strcmp` order, so numeric keys sort as text: "100010" <
/// "10002"); each record is `key NUL offset NUL`, padded with NULs to the
/// longest key plus the longest offset, then `\n`. The reader takes the
/// record size from the first `\n`, `bsearch`es with `strcmp(wanted, record)`
/// and `sscanf`s the decimal byte offset of the line in the `.cache` file.
fn cache_index(keys: impl Iterator<Item = (String, u64)>) -> Vec<u8> {
    let mut entries: Vec<(String, String)> = keys.map(|(k, o)| (k, o.to_string())).collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let key_len = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
    let offset_len = entries.iter().map(|e| e.1.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(entries.len() * (key_len + offset_len + 3));
    for (key, offset) in &entries {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(offset.as_bytes());
        out.push(0);
        out.resize(
            out.len() + key_len + offset_len - key.len() - offset.len(),
            0,
        );
        out.push(b'\n');
    }
    out
}

/// Writes passwd, group, passwd.cache, group.cache and the four indexes
/// for `users` and `groups` into `dir` (the overlay's upper /etc). The
/// indexes are written after the `.cache` files: libnss-cache ignores an
/// index older than its data file.
fn write_etc(dir: &Path, users: &[UnixUser], groups: &[UnixGroup]) -> Result<Sizes, Failure> {
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).map_err(|e| format!("write {name}: {e}"))
    };
    let (passwd, user_offsets) = lines_with_offsets(users.iter().map(passwd_line));
    let (group, group_offsets) = lines_with_offsets(groups.iter().map(group_line));
    write("passwd", &passwd)?;
    write("group", &group)?;
    write("passwd.cache", &passwd)?;
    write("group.cache", &group)?;
    let ixname = cache_index(
        users
            .iter()
            .map(|u| u.name.clone())
            .zip(user_offsets.clone()),
    );
    let ixuid = cache_index(users.iter().map(|u| u.uid.to_string()).zip(user_offsets));
    let gixname = cache_index(
        groups
            .iter()
            .map(|g| g.name.clone())
            .zip(group_offsets.clone()),
    );
    let ixgid = cache_index(groups.iter().map(|g| g.gid.to_string()).zip(group_offsets));
    write("passwd.cache.ixname", &ixname)?;
    write("passwd.cache.ixuid", &ixuid)?;
    write("group.cache.ixname", &gixname)?;
    write("group.cache.ixgid", &ixgid)?;
    Ok(Sizes {
        passwd: passwd.len(),
        group: group.len(),
        indexes: ixname.len() + ixuid.len() + gixname.len() + ixgid.len(),
        netauth: 0,
    })
}

struct Sizes {
    passwd: usize,
    group: usize,
    indexes: usize,
    netauth: usize,
}

fn prepare(dir: &Path, users: u32, groups: u32) -> Result<(), Failure> {
    let content = directory(users, groups);
    std::fs::create_dir_all(dir.join("etc")).map_err(|e| e.to_string())?;
    write_etc(&dir.join("etc"), &content.users, &content.groups)?;
    let cache = encode(&content).map_err(|e| format!("encode the netauth cache: {e}"))?;
    std::fs::write(dir.join("nss.cache"), cache).map_err(|e| e.to_string())
}

// ---- the namespace ---------------------------------------------------------

/// Everything a namespace mounts, in one scratch folder.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Result<Scratch, Failure> {
        let dir = tempfile::Builder::new()
            .prefix("netauth-nss-bench-")
            .tempdir()
            .map_err(|e| format!("scratch folder: {e}"))?;
        for sub in ["etc", "lib"] {
            std::fs::create_dir(dir.path().join(sub)).map_err(|e| format!("mkdir {sub}: {e}"))?;
        }
        Ok(Scratch { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `nss_bench ARGS` in a fresh private mount namespace set up for
    /// `variant`; returns its standard output.
    fn run(&self, variant: Variant, args: &[&str]) -> Result<String, Failure> {
        self.run_under(variant, &[], args)
    }

    /// [`run`](Self::run) with `nss_bench` started by `wrapper` (valgrind).
    fn run_under(
        &self,
        variant: Variant,
        wrapper: &[&str],
        args: &[&str],
    ) -> Result<String, Failure> {
        let nsswitch = self.path(&format!("nsswitch-{}.conf", variant.service()));
        std::fs::write(&nsswitch, variant.nsswitch()).map_err(|e| e.to_string())?;
        // The overlay's work folder must be empty and unused: one per run.
        let work = tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(self.dir.path())
            .map_err(|e| e.to_string())?;
        let script = r#"set -eu
mount -t tmpfs -o mode=0755 netauth-bench /var/lib
mkdir -p /var/lib/netauth
if [ -f "$NB_SCRATCH/nss.cache" ]; then
  # On the scratch folder's disk file system, as on a host (a page fault
  # on tmpfs costs this kind of machine about three times as much), and
  # written in large writes as the refresh writes it (2 MiB at a time):
  # the page cache then holds it in large folios, which the
  # kernel maps 2 MiB at a time. `cp` copies with copy_file_range, which
  # leaves 4 KiB pages and a TLB miss in most lookups.
  rm -rf "$NB_SCRATCH/cache"
  mkdir -m 0755 "$NB_SCRATCH/cache"
  dd if="$NB_SCRATCH/nss.cache" of="$NB_SCRATCH/cache/nss.cache" bs=64M status=none
  chmod 0644 "$NB_SCRATCH/cache/nss.cache"
  mount --bind "$NB_SCRATCH/cache" /var/lib/netauth
fi
mount -t overlay netauth-bench -o "lowerdir=/etc,upperdir=$NB_SCRATCH/etc,workdir=$NB_WORK" /etc
mount --bind "$NB_NSSWITCH" /etc/nsswitch.conf
if [ -d /run/nscd ]; then mount -t tmpfs netauth-bench /run/nscd; fi
export LD_LIBRARY_PATH="$NB_SCRATCH/lib"
unset NB_SCRATCH NB_WORK NB_NSSWITCH
exec "$@"
"#;
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .args(wrapper)
            .arg(me)
            .args(args)
            .env("NB_SCRATCH", self.dir.path())
            .env("NB_WORK", work.path())
            .env("NB_NSSWITCH", &nsswitch)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("run unshare: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "{} ({args:?}) failed: {}\n{stdout}",
            variant.title(),
            out.status
        );
        Ok(stdout)
    }
}

// ---- the orchestrator ------------------------------------------------------

/// One measured operation of one module.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    p99: f64,
    samples: usize,
}

const ROWS: [(&str, &str); 13] = [
    ("getpwnam_r", "`getpwnam_r`, random existing user"),
    ("getpwuid_r", "`getpwuid_r`, random existing uid"),
    ("getgrnam_r", "`getgrnam_r`, random existing group"),
    ("getgrouplist", "`getgrouplist`, random existing user"),
    (
        "getpwnam_r-first",
        "`getpwnam_r`, each user's first in the process ³",
    ),
    (
        "getpwuid_r-first",
        "`getpwuid_r`, each uid's first in the process ³",
    ),
    (
        "getgrnam_r-first",
        "`getgrnam_r`, each group's first in the process ³",
    ),
    (
        "getgrouplist-first",
        "`getgrouplist`, each user's first in the process ³",
    ),
    ("getpwent", "full `getpwent_r` loop (all users) ¹"),
    ("getgrent", "full `getgrent_r` loop (all groups) ¹"),
    ("first", "first `getpwnam_r` in a fresh process ²"),
    ("first-c", "first `getpwnam_r` in a fresh C program ²"),
    ("spawn", "fresh process: spawn → lookup → exit ²"),
];

fn run(o: &Options) -> Result<(), Failure> {
    require_root();
    let started = Instant::now();
    let load_start = load_average();
    let content = directory(o.users, o.groups);
    let scratch = Scratch::new()?;
    let mut sizes = write_etc(&scratch.path("etc"), &content.users, &content.groups)?;
    let cache = encode(&content).map_err(|e| format!("encode the netauth cache: {e}"))?;
    sizes.netauth = cache.len();
    std::fs::write(scratch.path("nss.cache"), &cache).map_err(|e| e.to_string())?;
    std::fs::copy(&o.module, scratch.path("lib/libnss_netauth.so.2"))
        .map_err(|e| format!("copy {:?}: {e}", o.module))?;
    build_floor(&scratch)?;
    let c_probe = build_first_lookup_probe(&scratch)?;
    let c_probe = c_probe.to_str().ok_or("scratch path is not UTF-8")?;
    eprintln!(
        "nss_bench: {} users, {} groups generated in {:.1} s",
        o.users,
        o.groups,
        started.elapsed().as_secs_f64()
    );

    // Proof that libnss-cache reads our indexes (and does not fall back to
    // its linear scan, which would also answer correctly, only slower).
    if o.variants.contains(&Variant::Cache) {
        let check = Scratch::new()?;
        write_index_check(&check)?;
        let out = check.run(Variant::Cache, &["index-check"])?;
        ensure!(out.contains("index-check ok"), "index check said: {out}");
    }

    // Rounds alternate the modules, so that a noisy neighbour (other
    // builds on this machine) hits all three alike; samples are pooled.
    let mut pooled: BTreeMap<(Variant, String), Vec<u64>> = BTreeMap::new();
    let mut timer = String::new();
    for r in 0..o.rounds {
        for &variant in &o.variants {
            let t = Instant::now();
            let out = scratch.run(
                variant,
                &[
                    "measure",
                    variant.service(),
                    &o.users.to_string(),
                    &o.groups.to_string(),
                    &(o.budget_ms / o.rounds).to_string(),
                    &(200_000 / o.rounds).to_string(),
                    &(15 / o.rounds).max(1).to_string(),
                    &o.fresh.div_ceil(o.rounds).to_string(),
                    &(u64::from(r) * 7919 + 1).to_string(),
                    if r == 0 { "check" } else { "no-check" },
                    c_probe,
                ],
            )?;
            for line in out.lines() {
                let mut fields = line.split_whitespace();
                match (fields.next(), fields.next()) {
                    (Some("samples"), Some(op)) => {
                        let into = pooled.entry((variant, op.to_owned())).or_default();
                        for ns in fields {
                            into.push(ns.parse().map_err(|e| format!("sample {ns:?}: {e}"))?);
                        }
                    }
                    (Some("timer"), Some(ns)) => timer = ns.to_owned(),
                    _ => {}
                }
            }
            eprintln!(
                "nss_bench: round {}: {} measured in {:.1} s",
                r + 1,
                variant.title(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    let results: BTreeMap<(Variant, String), Stats> = pooled
        .into_iter()
        .map(|(key, samples)| (key, stats(samples)))
        .collect();
    let mut counted = BTreeMap::new();
    if o.callgrind > 0 {
        // nss_files and libnss-cache scan files for some of these: hours
        // under valgrind, and their wall-clock figures say enough.
        for &variant in o
            .variants
            .iter()
            .filter(|v| matches!(v, Variant::Netauth | Variant::Floor))
        {
            for (op, _) in COUNTED {
                let per_lookup = count_instructions(o, &scratch, variant, op)?;
                counted.insert((variant, op.to_owned()), per_lookup);
            }
            eprintln!("nss_bench: {} counted under callgrind", variant.title());
        }
    }
    print!(
        "{}",
        report(
            o,
            &content,
            &sizes,
            &Measured {
                times: results,
                counted,
            },
            &timer,
            started.elapsed(),
            &load_start
        )
    );
    Ok(())
}

fn duration(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn ratio(other: f64, ours: f64) -> String {
    let r = other / ours;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Everything one run measured, per module and operation.
struct Measured {
    /// Wall-clock statistics.
    times: BTreeMap<(Variant, String), Stats>,
    /// Instructions per lookup under callgrind.
    counted: BTreeMap<(Variant, String), f64>,
}

fn report(
    o: &Options,
    content: &CacheContent,
    sizes: &Sizes,
    measured: &Measured,
    timer: &str,
    wall: Duration,
    load_start: &str,
) -> String {
    let (results, counted) = (&measured.times, &measured.counted);
    let mut s = String::new();
    let memberships: usize = content.groups.iter().map(|g| g.members.len()).sum();
    let _ = writeln!(
        s,
        "{} users, {} groups, {} memberships ({:.2} groups per user): {}; {}; {}.\n",
        o.users,
        o.groups,
        memberships,
        memberships as f64 / f64::from(o.users),
        group_sizes(content, "dept"),
        group_sizes(content, "proj"),
        group_sizes(content, "team"),
    );
    let _ = writeln!(
        s,
        "Sources: nss.cache {:.1} MB; /etc/passwd {:.1} MB, /etc/group {:.1} MB (same bytes in \
         passwd.cache/group.cache), libnss-cache indexes {:.1} MB.\n",
        sizes.netauth as f64 / 1e6,
        sizes.passwd as f64 / 1e6,
        sizes.group as f64 / 1e6,
        sizes.indexes as f64 / 1e6
    );
    let has = |v: Variant| o.variants.contains(&v);
    let median = |v: Variant, op: &str| results.get(&(v, op.to_owned())).map(|st| st.median);
    // Columns: every module's median / p99, then nss_netauth against the
    // floor (÷) and the other modules against nss_netauth (÷).
    let mut head = "| operation |".to_owned();
    for &v in &o.variants {
        let _ = write!(head, " {} median / p99 |", v.title());
    }
    let others: Vec<Variant> = [Variant::Files, Variant::Cache]
        .into_iter()
        .filter(|&v| has(v) && has(Variant::Netauth))
        .collect();
    let vs_floor = has(Variant::Floor) && has(Variant::Netauth);
    if vs_floor {
        head.push_str(" netauth ÷ floor |");
    }
    for v in &others {
        let _ = write!(head, " {} ÷ netauth |", v.service());
    }
    let columns = head.matches('|').count() - 1;
    let _ = writeln!(s, "{head}\n|{}", "---|".repeat(columns));
    for (op, label) in ROWS {
        let mut line = format!("| {label} |");
        for &v in &o.variants {
            let cell = results.get(&(v, op.to_owned())).map_or_else(
                || "–".to_owned(),
                |st| format!("{} / {}", duration(st.median), duration(st.p99)),
            );
            let _ = write!(line, " {cell} |");
        }
        let ours = median(Variant::Netauth, op);
        if vs_floor {
            let cell = match (ours, median(Variant::Floor, op)) {
                (Some(ours), Some(floor)) => format!("{:.2}×", ours / floor),
                _ => "–".to_owned(),
            };
            let _ = write!(line, " {cell} |");
        }
        for &v in &others {
            let cell = match (median(v, op), ours) {
                (Some(other), Some(ours)) => ratio(other, ours),
                _ => "–".to_owned(),
            };
            let _ = write!(line, " {cell} |");
        }
        let _ = writeln!(s, "{line}");
    }
    let samples = |op: &str| {
        o.variants
            .iter()
            .map(|v| {
                results
                    .get(&(*v, op.to_owned()))
                    .map_or(0, |st| st.samples)
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let _ = writeln!(
        s,
        "\nSamples ({}): getpwnam_r {}; getpwuid_r {}; getgrnam_r {}; \
         getgrouplist {}; getpwent {}; first lookup {}.",
        o.variants
            .iter()
            .map(|v| v.service())
            .collect::<Vec<_>>()
            .join(" / "),
        samples("getpwnam_r"),
        samples("getpwuid_r"),
        samples("getgrnam_r"),
        samples("getgrouplist"),
        samples("getpwent"),
        samples("first")
    );
    if let Some(hot) = hot_keys() {
        let _ = writeln!(
            s,
            "\nNSS_BENCH_HOT_KEYS={hot}: the lookups above used only the first {hot} keys of each \
             kind, whose entries stay in the CPU caches."
        );
    }
    let _ = writeln!(
        s,
        "\n¹ Whole loop per sample; the p99 column is the slowest loop. \
         ² One process per sample; the first two rows are timed inside the process (glibc reads \
         nsswitch.conf, loads the module, the module opens its data), the third by the parent. \
         The first row's process is this Rust program, which has libgcc_s loaded already; the \
         second's is a C program (src/first_lookup.c), as `id` or `ls -l` is. \
         ³ Before the warm lookups of the rows above, nss_netauth and the floor look up every key \
         once, in a random order, timed (nss_netauth checks each block of its file when a lookup \
         first reads it, once per process); nss_files and libnss-cache keep nothing per process, \
         so they skip it.\n"
    );
    let _ = writeln!(
        s,
        "Timer overhead (two `Instant::now()` back to back, median): {timer} ns, included in \
         every sample. {} rounds; total run {:.0} s; load average {} at the start, {} at the end.",
        o.rounds,
        wall.as_secs_f64(),
        load_start,
        load_average()
    );
    if !counted.is_empty() {
        let _ = writeln!(
            s,
            "\nInstructions per lookup under callgrind ({} warm lookups per operation, after one \
             lookup of every key; the first lookup of a fresh process counted once):\n",
            o.callgrind
        );
        let counted_variants: Vec<Variant> = o
            .variants
            .iter()
            .copied()
            .filter(|v| matches!(v, Variant::Netauth | Variant::Floor))
            .collect();
        let mut head = "| operation |".to_owned();
        for &v in &counted_variants {
            let _ = write!(head, " {} |", v.title());
        }
        if vs_floor {
            head.push_str(" netauth − floor |");
        }
        let columns = head.matches('|').count() - 1;
        let _ = writeln!(s, "{head}\n|{}", "---:|".repeat(columns));
        for (op, label) in COUNTED {
            let get = |v: Variant| counted.get(&(v, op.to_owned())).copied();
            let mut line = format!("| {label} |");
            for &v in &counted_variants {
                let _ = write!(
                    line,
                    " {} |",
                    get(v).map_or("–".to_owned(), |n| format!("{n:.0}"))
                );
            }
            if vs_floor {
                let cell = match (get(Variant::Netauth), get(Variant::Floor)) {
                    (Some(ours), Some(floor)) => format!("{:.0}", ours - floor),
                    _ => "–".to_owned(),
                };
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(s, "{line}");
        }
    }
    if let (Some(ours), Some(floor)) = (
        median(Variant::Netauth, "getpwnam_r"),
        median(Variant::Floor, "getpwnam_r"),
    ) {
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(s, "\nTargets against the floor (medians):");
        for op in ["getpwnam_r", "getpwuid_r", "getgrnam_r"] {
            if let (Some(a), Some(b)) = (median(Variant::Netauth, op), median(Variant::Floor, op)) {
                let _ = writeln!(
                    s,
                    "* warm {op}: {:.2}× the floor (≤ 1.3×: {})",
                    a / b,
                    met(a <= 1.3 * b)
                );
            }
        }
        if let Some(a) = median(Variant::Netauth, "getgrouplist") {
            let _ = writeln!(
                s,
                "* getgrouplist: {:.2}× the floor's getpwnam_r (≤ 1.5×: {})",
                a / floor,
                met(a <= 1.5 * floor)
            );
        }
        for (op, what) in [
            ("first", "first lookup"),
            ("first-c", "first lookup in a C program"),
        ] {
            if let (Some(a), Some(b)) = (median(Variant::Netauth, op), median(Variant::Floor, op)) {
                let _ = writeln!(
                    s,
                    "* {what}: floor + {} (≤ floor + 30 µs: {})",
                    duration(a - b),
                    met(a <= b + 30_000.0)
                );
            }
        }
        for op in ["getpwent", "getgrent"] {
            if let (Some(a), Some(b)) = (median(Variant::Netauth, op), median(Variant::Files, op)) {
                let _ = writeln!(
                    s,
                    "* {op} loop: {:.2}× nss_files' time (≤ 1: {})",
                    a / b,
                    met(a <= b)
                );
            }
        }
        let _ = ours;
    }
    s
}

/// The operations counted under callgrind: `count OP` names.
const COUNTED: [(&str, &str); 5] = [
    ("getpwnam_r", "`getpwnam_r`"),
    ("getpwuid_r", "`getpwuid_r`"),
    ("getgrnam_r", "`getgrnam_r`"),
    ("getgrouplist", "`getgrouplist`"),
    ("first", "first `getpwnam_r` in a fresh process"),
];

/// Builds the C program of the fresh C processes (`first_lookup`, in the
/// scratch folder); returns its path.
fn build_first_lookup_probe(scratch: &Scratch) -> Result<PathBuf, Failure> {
    let program = scratch.path("first_lookup");
    compile_c(
        scratch,
        ("first_lookup.c", FIRST_LOOKUP_C_SOURCE),
        &[],
        &program,
        "the C probe",
    )?;
    Ok(program)
}

/// Builds the floor module into the scratch `lib/`.
fn build_floor(scratch: &Scratch) -> Result<(), Failure> {
    compile_c(
        scratch,
        ("floor_nss.c", FLOOR_SOURCE),
        &["-shared", "-fPIC"],
        &scratch.path("lib/libnss_floor.so.2"),
        "the floor module",
    )
}

/// Writes `(name, text)` into the scratch folder and compiles it into
/// `output` with the system's C compiler (`-O2 -Wall -Werror` and `flags`);
/// `what` names it in errors.
fn compile_c(
    scratch: &Scratch,
    (name, text): (&str, &str),
    flags: &[&str],
    output: &Path,
    what: &str,
) -> Result<(), Failure> {
    let source = scratch.path(name);
    std::fs::write(&source, text).map_err(|e| format!("write {what}: {e}"))?;
    let out = Command::new("cc")
        .args(["-O2"])
        .args(flags)
        .args(["-Wall", "-Werror", "-o"])
        .arg(output)
        .arg(&source)
        .output()
        .map_err(|e| format!("run cc for {what}: {e}"))?;
    ensure!(
        out.status.success(),
        "cc failed on {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Instructions per lookup of `op` through `variant`, under callgrind with
/// collection switched on only inside [`counted_lookups`].
fn count_instructions(
    o: &Options,
    scratch: &Scratch,
    variant: Variant,
    op: &str,
) -> Result<f64, Failure> {
    let lookups = o.callgrind;
    let out_file = scratch.path(&format!("callgrind-{}-{op}.out", variant.service()));
    let out_arg = format!("--callgrind-out-file={}", out_file.display());
    let n = if op == "first" { 1 } else { lookups };
    scratch.run_under(
        variant,
        &[
            "valgrind",
            "--tool=callgrind",
            "--quiet",
            "--collect-atstart=no",
            "--toggle-collect=*counted_lookups*",
            &out_arg,
        ],
        &[
            "count",
            op,
            &n.to_string(),
            &o.users.to_string(),
            &o.groups.to_string(),
        ],
    )?;
    let text = std::fs::read_to_string(&out_file).map_err(|e| format!("{out_file:?}: {e}"))?;
    // Kept on request, for callgrind_annotate: where the instructions go.
    if let Some(keep) = std::env::var_os("NSS_BENCH_KEEP_CALLGRIND") {
        let name = out_file.file_name().unwrap_or_default();
        std::fs::copy(&out_file, PathBuf::from(keep).join(name))
            .map_err(|e| format!("keep {out_file:?}: {e}"))?;
    }
    let total: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{out_file:?}: no totals line"))?;
    Ok(total as f64 / f64::from(n))
}

// ---- inside the namespace: checks and timings ------------------------------

fn c(s: &str) -> CString {
    CString::new(s).expect("generated names hold no NUL")
}

/// # Safety
/// `p` must be NULL or a valid C string.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return "<NULL>".to_owned();
    }
    // SAFETY: the caller guarantees a valid C string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// glibc's lookups into one reused buffer.
struct Glibc {
    buf: Vec<c_char>,
}

impl Glibc {
    fn new() -> Glibc {
        Glibc {
            // Written once so no page fault lands in a timed call.
            buf: vec![1; BUFFER_LEN],
        }
    }

    fn getpwnam(&mut self, name: &CStr) -> Option<String> {
        // SAFETY: zeroed struct passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result is the filled `pwd`.
        (rc == 0 && !result.is_null()).then(|| unsafe { passwd_line_of(&pwd) })
    }

    fn getpwuid(&mut self, uid: u32) -> Option<String> {
        // SAFETY: zeroed struct passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result is the filled `pwd`.
        (rc == 0 && !result.is_null()).then(|| unsafe { passwd_line_of(&pwd) })
    }

    fn getgrnam(&mut self, name: &CStr) -> Option<String> {
        // SAFETY: zeroed struct group is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result is the filled `grp`.
        (rc == 0 && !result.is_null()).then(|| unsafe { group_line_of(&grp) })
    }

    fn getgrgid(&mut self, gid: u32) -> Option<String> {
        // SAFETY: zeroed struct group is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut grp,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        // SAFETY: a non-NULL result is the filled `grp`.
        (rc == 0 && !result.is_null()).then(|| unsafe { group_line_of(&grp) })
    }

    /// The user's gids, sorted, or None on failure.
    fn getgrouplist(name: &CStr, primary: u32) -> Option<Vec<u32>> {
        let mut gids = [0 as libc::gid_t; 256];
        let mut count = gids.len() as c_int;
        // SAFETY: `gids` has room for `count` gids.
        let rc =
            unsafe { libc::getgrouplist(name.as_ptr(), primary, gids.as_mut_ptr(), &mut count) };
        if rc < 0 {
            return None;
        }
        let mut list = gids.get(..count as usize)?.to_vec();
        list.sort_unstable();
        Some(list)
    }

    /// A whole `getpwent_r` loop: each entry's line (`keep`) or just the count.
    fn all_passwd(&mut self, keep: bool) -> (usize, Vec<String>) {
        let mut lines = Vec::new();
        let mut count = 0;
        // SAFETY: plain call.
        unsafe { libc::setpwent() };
        loop {
            // SAFETY: zeroed struct passwd is a valid out-parameter.
            let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result = std::ptr::null_mut();
            // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
            let rc = unsafe {
                libc::getpwent_r(&mut pwd, self.buf.as_mut_ptr(), self.buf.len(), &mut result)
            };
            if rc != 0 || result.is_null() {
                break;
            }
            count += 1;
            if keep {
                // SAFETY: the filled `pwd`.
                lines.push(unsafe { passwd_line_of(&pwd) });
            }
        }
        // SAFETY: plain call.
        unsafe { libc::endpwent() };
        (count, lines)
    }

    fn all_groups(&mut self, keep: bool) -> (usize, Vec<String>) {
        let mut lines = Vec::new();
        let mut count = 0;
        // SAFETY: plain call.
        unsafe { libc::setgrent() };
        loop {
            // SAFETY: zeroed struct group is a valid out-parameter.
            let mut grp: libc::group = unsafe { std::mem::zeroed() };
            let mut result = std::ptr::null_mut();
            // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
            let rc = unsafe {
                libc::getgrent_r(&mut grp, self.buf.as_mut_ptr(), self.buf.len(), &mut result)
            };
            if rc != 0 || result.is_null() {
                break;
            }
            count += 1;
            if keep {
                // SAFETY: the filled `grp`.
                lines.push(unsafe { group_line_of(&grp) });
            }
        }
        // SAFETY: plain call.
        unsafe { libc::endgrent() };
        (count, lines)
    }
}

/// # Safety
/// `p` must be a filled struct passwd.
unsafe fn passwd_line_of(p: &libc::passwd) -> String {
    // SAFETY: a filled struct passwd holds valid C strings.
    unsafe {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            text(p.pw_name),
            text(p.pw_passwd),
            p.pw_uid,
            p.pw_gid,
            text(p.pw_gecos),
            text(p.pw_dir),
            text(p.pw_shell)
        )
    }
}

/// # Safety
/// `g` must be a filled struct group.
unsafe fn group_line_of(g: &libc::group) -> String {
    let mut members = Vec::new();
    // SAFETY: gr_mem is a NULL-terminated array of C strings.
    unsafe {
        let mut p = g.gr_mem;
        while !p.is_null() && !(*p).is_null() {
            members.push(text(*p));
            p = p.add(1);
        }
        format!(
            "{}:{}:{}:{}",
            text(g.gr_name),
            text(g.gr_passwd),
            g.gr_gid,
            members.join(",")
        )
    }
}

fn expected_groups(content: &CacheContent, u: &UnixUser) -> Vec<u32> {
    let mut gids = content
        .user_groups
        .get(&u.name)
        .cloned()
        .unwrap_or_default();
    if !gids.contains(&u.gid) {
        gids.push(u.gid);
    }
    gids.sort_unstable();
    gids
}

/// Every answer checked against the generated directory: sampled point
/// lookups, the largest groups, an unknown name, both full enumerations.
fn verify(content: &CacheContent, glibc: &mut Glibc) -> Result<(), Failure> {
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let users = &content.users;
    for _ in 0..300 {
        let u = &users[rng.below(users.len())];
        let want = Some(passwd_line(u));
        ensure!(
            glibc.getpwnam(&c(&u.name)) == want,
            "getpwnam {}: wrong answer",
            u.name
        );
        ensure!(
            glibc.getpwuid(u.uid) == want,
            "getpwuid {}: wrong answer",
            u.uid
        );
    }
    for _ in 0..50 {
        let u = &users[rng.below(users.len())];
        let got = Glibc::getgrouplist(&c(&u.name), u.gid);
        ensure!(
            got.as_ref() == Some(&expected_groups(content, u)),
            "getgrouplist {}: {got:?}",
            u.name
        );
    }
    let mut by_size: Vec<&UnixGroup> = content.groups.iter().collect();
    by_size.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    let sampled: Vec<&UnixGroup> = (0..100)
        .map(|_| &content.groups[rng.below(content.groups.len())])
        .chain(by_size.into_iter().take(5))
        .collect();
    for g in sampled {
        let want = Some(group_line(g));
        ensure!(
            glibc.getgrnam(&c(&g.name)) == want,
            "getgrnam {}: wrong answer",
            g.name
        );
        ensure!(
            glibc.getgrgid(g.gid) == want,
            "getgrgid {}: wrong answer",
            g.gid
        );
    }
    ensure!(
        glibc.getpwnam(&c("no_such_user")).is_none() && glibc.getpwuid(99).is_none(),
        "an unknown user was found"
    );
    let (_, listed) = glibc.all_passwd(true);
    ensure!(
        listed.len() == users.len() && listed.iter().zip(users).all(|(l, u)| *l == passwd_line(u)),
        "getpwent listed {} users, not exactly the {} generated",
        listed.len(),
        users.len()
    );
    let (_, listed) = glibc.all_groups(true);
    ensure!(
        listed.len() == content.groups.len()
            && listed
                .iter()
                .zip(&content.groups)
                .all(|(l, g)| *l == group_line(g)),
        "getgrent listed {} groups, not exactly the {} generated",
        listed.len(),
        content.groups.len()
    );
    Ok(())
}

fn stats(mut samples: Vec<u64>) -> Stats {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .map_or(f64::NAN, |&ns| ns as f64)
    };
    Stats {
        median: at(0.5),
        p99: at(0.99),
        samples: samples.len(),
    }
}

/// One line per operation: `samples OP NS NS ...` (the orchestrator pools
/// the rounds before taking quantiles).
fn print_samples(op: &str, samples: &[u64]) {
    let mut line = format!("samples {op}");
    for ns in samples {
        let _ = write!(line, " {ns}");
    }
    println!("{line}");
}

/// How much one `measure` run does (one round of one module).
struct Round {
    budget: Duration,
    max_calls: usize,
    max_loops: usize,
    fresh: usize,
    seed: u64,
}

/// Every key below `keys` in a random order: a process's first lookup of
/// each.
fn permutation(keys: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys).collect();
    for i in (1..keys).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// Timings of one operation: `first` of each key's first lookup in the
/// process (empty if not asked for), `warm` of lookups after every key
/// was looked up once.
struct Timed {
    first: Vec<u64>,
    warm: Vec<u64>,
}

/// With `every_key`, first one timed lookup of every key below `keys` in
/// a random order. nss_netauth checks each block of its file (CRC) when a
/// lookup first reads it, once per process; random keys from a directory
/// of a million would otherwise mostly be first lookups, and the warm
/// figure would not be warm. Then up to `max_calls` timed calls of `op` on
/// random keys, or as many as fit in `budget`, after a warm-up of a tenth
/// of that.
fn time_random(
    what: &str,
    keys: usize,
    round: &Round,
    every_key: bool,
    mut op: impl FnMut(usize) -> bool,
) -> Result<Timed, Failure> {
    let mut rng = Rng(round.seed ^ (what.len() as u64) << 32 | 1);
    let keys = hot_keys().map_or(keys, |hot| hot.min(keys));
    // One timed lookup: its nanoseconds and when it ended.
    let mut timed = |key: usize| -> Result<(u64, Instant), Failure> {
        let t0 = Instant::now();
        let found = op(key);
        let t1 = Instant::now();
        ensure!(found, "{what}: lookup of key {key} failed");
        Ok(((t1 - t0).as_nanos() as u64, t1))
    };
    let mut first = Vec::new();
    if every_key {
        first.reserve(keys);
        for key in permutation(keys, &mut rng) {
            first.push(timed(key)?.0);
        }
    }
    let warm_until = Instant::now() + round.budget / 10;
    for n in 0.. {
        timed(rng.below(keys))?;
        if n >= round.max_calls / 10 || Instant::now() > warm_until {
            break;
        }
    }
    let mut warm = Vec::with_capacity(round.max_calls);
    let start = Instant::now();
    while warm.len() < round.max_calls {
        let (ns, end) = timed(rng.below(keys))?;
        warm.push(ns);
        if end - start > round.budget {
            break;
        }
    }
    Ok(Timed { first, warm })
}

/// `NSS_BENCH_HOT_KEYS`, if set: how many keys the timed lookups use.
fn hot_keys() -> Option<usize> {
    std::env::var("NSS_BENCH_HOT_KEYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
}

/// Prints both sets of [`Timed`]: `OP` and `OP-first`.
fn print_timed(op: &str, timed: &Timed) {
    if !timed.first.is_empty() {
        print_samples(&format!("{op}-first"), &timed.first);
    }
    print_samples(op, &timed.warm);
}

/// Whole loops of `op`: at least one, at most `max_loops`, within the budget.
fn time_loops(round: &Round, mut op: impl FnMut() -> bool) -> Result<Vec<u64>, Failure> {
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < round.max_loops && (samples.is_empty() || start.elapsed() < round.budget)
    {
        let t0 = Instant::now();
        let ok = op();
        samples.push(t0.elapsed().as_nanos() as u64);
        ensure!(ok, "an enumeration came out wrong");
    }
    Ok(samples)
}

fn timer_overhead() -> u64 {
    let mut samples: Vec<u64> = (0..100_000)
        .map(|_| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// One round of one module, inside its namespace: (on the first round)
/// check every kind of answer, then time each operation.
fn measure(
    variant: Variant,
    users: u32,
    groups: u32,
    round: &Round,
    check: bool,
    c_probe: &Path,
) -> Result<(), Failure> {
    let content = directory(users, groups);
    let mut glibc = Glibc::new();
    if variant == Variant::Netauth {
        ensure!(Path::new(CACHE_PATH).is_file(), "{CACHE_PATH} missing");
    }
    // The floor answers one fixed entry for every key: nothing to check.
    if check && variant != Variant::Floor {
        verify(&content, &mut glibc).map_err(|e| format!("{}: {e}", variant.title()))?;
    }
    println!("timer {}", timer_overhead());

    let names: Vec<CString> = content.users.iter().map(|u| c(&u.name)).collect();
    let group_names: Vec<CString> = content.groups.iter().map(|g| c(&g.name)).collect();
    let n = content.users.len();
    // nss_files and libnss-cache keep nothing per process (each lookup
    // reads the files again), and a pass over every key would take them
    // minutes: only nss_netauth and the floor make it.
    let every_key = matches!(variant, Variant::Netauth | Variant::Floor);
    let timed = time_random("getpwnam_r", n, round, every_key, |i| {
        glibc.getpwnam_raw(&names[i])
    })?;
    print_timed("getpwnam_r", &timed);
    let timed = time_random("getpwuid_r", n, round, every_key, |i| {
        glibc.getpwuid_raw(content.users[i].uid)
    })?;
    print_timed("getpwuid_r", &timed);
    let timed = time_random("getgrnam_r", group_names.len(), round, every_key, |i| {
        glibc.getgrnam_raw(&group_names[i])
    })?;
    print_timed("getgrnam_r", &timed);
    let timed = time_random("getgrouplist", n, round, every_key, |i| {
        Glibc::getgrouplist_raw(&names[i], content.users[i].gid)
    })?;
    print_timed("getgrouplist", &timed);
    if variant != Variant::Floor {
        let samples = time_loops(round, || glibc.all_passwd(false).0 == n)?;
        print_samples("getpwent", &samples);
        let samples = time_loops(round, || glibc.all_groups(false).0 == content.groups.len())?;
        print_samples("getgrent", &samples);
    }

    // Fresh processes: each looks up one random user once; a C program
    // looks up the same user after each.
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = Rng(round.seed ^ 0xf2e5_0000_0000_0003);
    let (mut inside, mut outside, mut in_c) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while inside.len() < round.fresh && (inside.len() < 3 || start.elapsed() < round.budget * 2) {
        let name = &content.users[rng.below(n)].name;
        let t0 = Instant::now();
        inside.push(fresh_lookup(
            Command::new(&me).args(["first", name]),
            "fresh process",
            name,
        )?);
        outside.push(t0.elapsed().as_nanos() as u64);
        in_c.push(fresh_lookup(
            Command::new(c_probe).arg(name),
            "the C probe",
            name,
        )?);
    }
    print_samples("first", &inside);
    print_samples("first-c", &in_c);
    print_samples("spawn", &outside);
    Ok(())
}

/// Runs `program` (`what`, a fresh process looking up `name` once) and
/// returns the lookup's duration in nanoseconds, which it prints.
fn fresh_lookup(program: &mut Command, what: &str, name: &str) -> Result<u64, Failure> {
    let out = program
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("spawn {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{what} for {name} failed ({}): {stdout}",
        out.status
    );
    stdout
        .trim()
        .parse()
        .map_err(|e| format!("{what} said {stdout:?}: {e}"))
}

impl Glibc {
    // The timed forms: status only, no copying out of the answer.

    fn getpwnam_raw(&mut self, name: &CStr) -> bool {
        // SAFETY: zeroed struct passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        rc == 0 && !result.is_null()
    }

    fn getpwuid_raw(&mut self, uid: u32) -> bool {
        // SAFETY: zeroed struct passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        rc == 0 && !result.is_null()
    }

    fn getgrnam_raw(&mut self, name: &CStr) -> bool {
        // SAFETY: zeroed struct group is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers; `buf.len()` bytes of `buf` are writable.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut result,
            )
        };
        rc == 0 && !result.is_null()
    }

    fn getgrouplist_raw(name: &CStr, primary: u32) -> bool {
        let mut gids = [0 as libc::gid_t; 256];
        let mut count = gids.len() as c_int;
        // SAFETY: `gids` has room for `count` gids.
        let rc =
            unsafe { libc::getgrouplist(name.as_ptr(), primary, gids.as_mut_ptr(), &mut count) };
        rc > 0
    }
}

/// One process, one lookup: glibc reads nsswitch.conf, loads the module
/// and the module opens its data, all inside the timed call.
fn first(name: &str) -> Result<(), Failure> {
    let name = c(name);
    let mut glibc = Glibc::new();
    let t0 = Instant::now();
    let found = glibc.getpwnam_raw(&name);
    let ns = t0.elapsed().as_nanos();
    ensure!(found, "{name:?} not found");
    println!("{ns}");
    Ok(())
}

/// The name of group `g` of a directory of `groups` groups (as
/// [`directory`] names them), without generating the directory.
fn group_name_at(groups: u32, g: u32) -> String {
    let (departments, projects, _) = group_kinds(groups);
    if g < departments {
        format!("dept{g}")
    } else if g < departments + projects {
        format!("proj{}", g - departments)
    } else {
        format!("team{}", g - departments - projects)
    }
}

/// `count OP N USERS GROUPS`, run under callgrind: `N` lookups of random
/// existing keys, after one lookup of every key (as the warm rows of the
/// timings), collected only inside [`counted_lookups`]. For `first`, the
/// process's one first lookup.
fn count(op: &str, n: u32, users: u32, groups: u32) -> Result<(), Failure> {
    let mut glibc = Glibc::new();
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let user_names: Vec<CString> = (0..users).map(|i| c(&format!("user{i}"))).collect();
    let group_names: Vec<CString> = (0..groups).map(|g| c(&group_name_at(groups, g))).collect();
    let keys = if op == "getgrnam_r" { groups } else { users } as usize;
    let lookup = |glibc: &mut Glibc, i: usize| -> bool {
        match op {
            "getpwnam_r" | "first" => glibc.getpwnam_raw(&user_names[i]),
            "getpwuid_r" => glibc.getpwuid_raw(FIRST_UID + i as u32),
            "getgrnam_r" => glibc.getgrnam_raw(&group_names[i]),
            _ => Glibc::getgrouplist_raw(&user_names[i], FIRST_GID),
        }
    };
    if op != "first" {
        for i in permutation(keys, &mut rng) {
            ensure!(lookup(&mut glibc, i), "{op}: a warm-up lookup failed");
        }
    }
    let found = counted_lookups(n, || {
        let i = rng.below(keys);
        lookup(&mut glibc, i)
    });
    ensure!(found == n, "{op}: {} of {n} lookups failed", n - found);
    Ok(())
}

/// Callgrind collects inside this function only (`--toggle-collect`).
#[inline(never)]
fn counted_lookups(n: u32, mut lookup: impl FnMut() -> bool) -> u32 {
    (0..n).map(|_| u32::from(lookup())).sum()
}

// ---- is libnss-cache really using the indexes? -----------------------------

/// Three users and three groups in the `.cache` files; the indexes list
/// only the first two of each. Through the index the third is unknown;
/// libnss-cache's linear fallback (taken when an index is missing, stale or
/// unreadable) would find it.
fn index_check_entries() -> (Vec<UnixUser>, Vec<UnixGroup>) {
    let users = vec![
        user("ixa", 100_010, 200_000, "A"),
        user("ixb", 100_002, 200_000, "B"),
        user("ixhidden", 100_003, 200_000, "Hidden"),
    ];
    let groups = vec![
        UnixGroup {
            name: "gxa".into(),
            gid: 200_010,
            members: vec!["ixa".into()],
        },
        UnixGroup {
            name: "gxb".into(),
            gid: 200_002,
            members: vec![],
        },
        UnixGroup {
            name: "gxhidden".into(),
            gid: 200_003,
            members: vec!["ixa".into(), "ixb".into()],
        },
    ];
    (users, groups)
}

fn write_index_check(scratch: &Scratch) -> Result<(), Failure> {
    let (users, groups) = index_check_entries();
    let dir = scratch.path("etc");
    write_etc(&dir, &users, &groups)?;
    // Re-write the indexes over the first two entries only (the data files
    // stay as they are, so the indexes are still the newer files).
    let (_, user_offsets) = lines_with_offsets(users.iter().map(passwd_line));
    let (_, group_offsets) = lines_with_offsets(groups.iter().map(group_line));
    let index = |keys: Vec<String>, offsets: &[u64]| {
        cache_index(keys.into_iter().zip(offsets.iter().copied()).take(2))
    };
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), bytes).map_err(|e| format!("write {name}: {e}"))
    };
    write(
        "passwd.cache.ixname",
        index(
            users.iter().map(|u| u.name.clone()).collect(),
            &user_offsets,
        ),
    )?;
    write(
        "passwd.cache.ixuid",
        index(
            users.iter().map(|u| u.uid.to_string()).collect(),
            &user_offsets,
        ),
    )?;
    write(
        "group.cache.ixname",
        index(
            groups.iter().map(|g| g.name.clone()).collect(),
            &group_offsets,
        ),
    )?;
    write(
        "group.cache.ixgid",
        index(
            groups.iter().map(|g| g.gid.to_string()).collect(),
            &group_offsets,
        ),
    )?;
    Ok(())
}

fn index_check() -> Result<(), Failure> {
    let (users, groups) = index_check_entries();
    let mut glibc = Glibc::new();
    let (a, b, hidden) = (&users[0], &users[1], &users[2]);
    ensure!(
        glibc.getpwnam(&c(&a.name)) == Some(passwd_line(a)),
        "{} by name",
        a.name
    );
    ensure!(
        glibc.getpwuid(a.uid) == Some(passwd_line(a)),
        "{} by uid",
        a.name
    );
    ensure!(
        glibc.getpwuid(b.uid) == Some(passwd_line(b)),
        "{} by uid",
        b.name
    );
    let (ga, gb, ghidden) = (&groups[0], &groups[1], &groups[2]);
    ensure!(
        glibc.getgrnam(&c(&ga.name)) == Some(group_line(ga)),
        "{} by name",
        ga.name
    );
    ensure!(
        glibc.getgrgid(gb.gid) == Some(group_line(gb)),
        "{} by gid",
        gb.name
    );
    ensure!(
        glibc.getpwnam(&c(&hidden.name)).is_none()
            && glibc.getpwuid(hidden.uid).is_none()
            && glibc.getgrnam(&c(&ghidden.name)).is_none()
            && glibc.getgrgid(ghidden.gid).is_none(),
        "an entry missing from the index was found: libnss-cache scanned the file \
         instead of using the index"
    );
    // The data itself is there (enumeration reads the files, not the index).
    ensure!(
        glibc.all_passwd(false).0 == 3 && glibc.all_groups(false).0 == 3,
        "enumeration of the index-check files"
    );
    println!("index-check ok");
    Ok(())
}
