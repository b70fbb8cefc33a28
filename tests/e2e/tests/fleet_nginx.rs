//! End to end, fleet refreshes: `netauth-unix publish` against the test
//! server writes a signed snapshot into a folder that a real nginx (Debian's,
//! run by the test with its own config and prefix in a temp folder, on a
//! loopback port, over TLS with a certificate the hosts pin) serves; two
//! "hosts" (two configs, two cache folders) refresh from it and real glibc
//! NSS answers from their caches in private mount namespaces, as it does
//! from a direct refresh. The second fetch is a 304 in nginx's access log;
//! a flipped byte, another publisher's key, an older snapshot put back and
//! a snapshot too old are each refused with the cache kept byte for byte
//! and the reason in `status`.

#[path = "../../../netauth-unix/tests/refresh_support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::{Duration, Instant};

use netauth_e2e::nss::{netauth_unix_binary, sh_in_namespace};
use netauth_testserver::{generate_tls_identity, Options, TestServer};
use support::{require_stock_local_groups, seed_directory, user_name, RefreshEnv, FIRST_UID};

const USERS: usize = 40;

/// The `netauth-unix` binary as it ships.
fn netauth_unix() -> &'static Path {
    netauth_unix_binary()
}

fn run(args: &[&str]) -> Output {
    Command::new(netauth_unix())
        .args(args)
        .output()
        .expect("run netauth-unix")
}

fn ok(out: Output, what: &str) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// nginx serving `root` on a loopback port over TLS, with its own prefix,
/// config and logs in `dir`; stopped (our child, by its pid) when dropped.
struct Nginx {
    child: Child,
    port: u16,
    access_log: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, root: &Path, cert_pem: &str, key_pem: &str) -> Nginx {
        let nginx = Path::new("/usr/sbin/nginx");
        assert!(
            nginx.exists(),
            "nginx is not installed (scripts/setup.sh installs it)"
        );
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        std::fs::write(prefix.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(prefix.join("key.pem"), key_pem).unwrap();
        std::fs::set_permissions(prefix.join("key.pem"), PermissionsExt::from_mode(0o600)).unwrap();
        // A free port: bound, read, released (nginx binds it right after).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let access_log = prefix.join("logs/access.log");
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\n\
             pid {pid};\nerror_log {err} info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  log_format fleet '$request_method $uri $status $body_bytes_sent';\n\
             access_log {access} fleet;\n  default_type application/octet-stream;\n\
             client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
             fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n\
             scgi_temp_path {tmp}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name localhost;\n\
             ssl_certificate {prefix}/cert.pem;\n    ssl_certificate_key {prefix}/key.pem;\n\
             root {root};\n  }}\n}}\n",
            pid = p(&prefix.join("nginx.pid")),
            err = p(&prefix.join("logs/error.log")),
            access = p(&access_log),
            tmp = p(&prefix),
            prefix = p(&prefix),
            root = p(root),
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx)
            .args(["-p", p(&prefix), "-c", p(&conf_path), "-e"])
            .arg(prefix.join("logs/error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            access_log,
        }
    }

    /// `METHOD URI STATUS BYTES` lines of the access log so far.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill only reads the pid of our own child process (not
        // reaped yet, so the number cannot have been reused).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}

/// A host: its config (reading the snapshot from `source`) and cache folder.
struct Host {
    config: PathBuf,
    cache_dir: PathBuf,
}

impl Host {
    fn new(dir: &Path, name: &str, refresh_extra: &str) -> Host {
        let sub = dir.join(name);
        std::fs::create_dir(&sub).unwrap();
        // The hosts never talk to NetAuth for the refresh: the server named
        // here is a closed port.
        let core = "[core]\nserver = \"127.0.0.1\"\nport = 9\n[tls]\npwn_me = true\n";
        let config = RefreshEnv::write_config(&sub, core, refresh_extra);
        Host {
            config,
            cache_dir: sub.join("cache"),
        }
    }

    fn refresh(&self) -> Output {
        run(&["refresh", "--config", p(&self.config)])
    }

    fn cache(&self) -> Vec<u8> {
        std::fs::read(self.cache_dir.join("nss.cache")).expect("a cache")
    }

    fn status(&self) -> String {
        let out = run(&["status", "--config", p(&self.config)]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The refresh fails, says `why` on stderr and in `status`, and the
    /// cache is the same bytes as before.
    fn refused(&self, why: &str) {
        let before = self.cache();
        let out = self.refresh();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(why), "expected {why:?} in: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_eq!(self.cache(), before, "the cache must be kept byte for byte");
        let status = self.status();
        assert!(status.contains(why), "expected {why:?} in status: {status}");
    }
}

/// What NSS answers from `cache` for the seeded users and groups.
fn lookups(cache: &[u8], extra: &str) -> String {
    let mut script = String::from("set -u\necho '== passwd'; getent passwd | sort\n");
    script += "echo '== group'; getent group | sort\n";
    for i in [0, 1, 2, 3, 13, 17, 33] {
        let name = user_name(i);
        script += &format!("echo '== id {name}'; id {name}\n");
    }
    script += extra;
    sh_in_namespace(cache, &script)
}

/// Sets the modification time of `path` to `secs` (nginx's ETag and
/// Last-Modified come from it, with a resolution of a second).
fn set_mtime(path: &Path, secs: i64) {
    let status = Command::new("touch")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn hosts_refresh_from_a_signed_snapshot_served_by_nginx() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    require_stock_local_groups();
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Default::default()
    });
    seed_directory(server.state(), USERS);
    // The publisher: a config for the server, as for a direct refresh.
    let publisher = RefreshEnv::new(&server, "");
    let dir = tempfile::Builder::new()
        .prefix("netauth-fleet-")
        .tempdir()
        .unwrap();
    // nginx's worker runs as nobody: it must reach the served folder.
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let www = dir.path().join("www");
    let out_dir = www.join("netauth");

    // keygen: the private key 0600, the config line on stdout.
    let key = dir.path().join("publisher.key");
    let out = ok(run(&["keygen", "--out", p(&key)]), "keygen");
    let line = String::from_utf8(out.stdout).unwrap();
    let public = line
        .trim()
        .strip_prefix("publisher_key = \"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("keygen printed {line:?}"))
        .to_owned();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_ne!(run(&["keygen", "--out", p(&key)]).status.code(), Some(0));

    let publish = |key: &Path, out_dir: &Path| {
        ok(
            run(&[
                "publish",
                "--config",
                p(&publisher.config),
                "--out",
                p(out_dir),
                "--key",
                p(key),
            ]),
            "publish",
        )
    };
    publish(&key, &out_dir);
    let snapshot = out_dir.join("snapshot.json");
    let signature = out_dir.join("snapshot.json.sig");
    let first = std::fs::read(&snapshot).unwrap();
    let first_sig = std::fs::read(&signature).unwrap();
    let first_mtime = std::fs::metadata(&snapshot).unwrap().modified().unwrap();
    // An unchanged directory leaves the files alone: same bytes, same time.
    std::thread::sleep(Duration::from_millis(1100));
    let again = publish(&key, &out_dir);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&snapshot).unwrap(), first);
    assert_eq!(
        std::fs::metadata(&snapshot).unwrap().modified().unwrap(),
        first_mtime
    );

    let identity = generate_tls_identity(&["localhost", "127.0.0.1"]);
    let nginx = Nginx::start(dir.path(), &www, &identity.cert_pem, &identity.key_pem);
    let pinned = dir.path().join("mirror.pem");
    std::fs::write(&pinned, &identity.cert_pem).unwrap();
    let source = format!("https://localhost:{}/netauth/", nginx.port);
    let fleet = format!(
        "source = \"{source}\"\npublisher_key = \"{public}\"\nsource_certificate = \"{}\"\n",
        p(&pinned)
    );
    let host_a = Host::new(dir.path(), "a", &fleet);
    let host_b = Host::new(
        dir.path(),
        "b",
        &format!("{fleet}local_group_name_clash = \"rename\"\n"),
    );
    // The same directory fetched directly, for comparison.
    let direct = RefreshEnv::new(&server, "");
    ok(
        run(&["refresh", "--config", p(&direct.config)]),
        "direct refresh",
    );

    let out = ok(host_a.refresh(), "host a");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("from snapshot"), "{said}");
    ok(host_b.refresh(), "host b");
    let a = host_a.cache();
    let b = host_b.cache();

    // Host a answers exactly as a host that asked NetAuth itself.
    let extra = "echo '== renamed'; getent group netauth-users; echo \"exit=$?\"\n";
    let seen_a = lookups(&a, extra);
    let seen_direct = lookups(&std::fs::read(direct.cache_path()).unwrap(), extra);
    assert_eq!(seen_a, seen_direct);
    let alice = user_name(0);
    assert!(
        seen_a.contains(&format!("{alice}:*:{FIRST_UID}:")),
        "{seen_a}"
    );
    assert!(seen_a.contains("== renamed\nexit=2"), "{seen_a}");
    // Host b applied its own clash rule to the same snapshot: the NetAuth
    // `users` group is served renamed, with members; the local `users`
    // is untouched.
    let seen_b = lookups(&b, extra);
    let renamed = seen_b
        .lines()
        .find(|l| l.starts_with("netauth-users:"))
        .unwrap_or_else(|| panic!("{seen_b}"));
    assert!(
        renamed.split(':').nth(3).is_some_and(|m| !m.is_empty()),
        "{renamed}"
    );
    assert!(seen_b.contains("\nusers:x:100:"), "{seen_b}");
    assert_ne!(seen_a, seen_b);

    // One 200 each (snapshot and signature), then a conditional GET: 304,
    // no signature fetched.
    ok(host_a.refresh(), "host a, second time");
    let log = nginx.log();
    let gets = |uri: &str| -> Vec<String> {
        log.iter()
            .filter(|l| l.starts_with(&format!("GET {uri} ")))
            .cloned()
            .collect()
    };
    let snap_gets = gets("/netauth/snapshot.json");
    assert_eq!(snap_gets.len(), 3, "{log:?}");
    assert!(snap_gets[0].starts_with("GET /netauth/snapshot.json 200 "));
    assert!(snap_gets[1].starts_with("GET /netauth/snapshot.json 200 "));
    assert!(
        snap_gets[2].starts_with("GET /netauth/snapshot.json 304 "),
        "{log:?}"
    );
    assert_eq!(gets("/netauth/snapshot.json.sig").len(), 2, "{log:?}");
    let status = host_a.status();
    assert!(status.contains("snapshot:     sequence "), "{status}");
    let a = host_a.cache();

    // One flipped byte (a new modification time, as any rewrite has).
    let mut flipped = first.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x20;
    std::fs::write(&snapshot, &flipped).unwrap();
    set_mtime(&snapshot, now() + 10);
    host_a.refused("signature does not match");
    assert_eq!(host_a.cache(), a);

    // Signed by another key: a second publisher's output put in its place.
    let other_key = dir.path().join("other.key");
    ok(run(&["keygen", "--out", p(&other_key)]), "keygen 2");
    let other_dir = dir.path().join("other");
    publish(&other_key, &other_dir);
    std::fs::copy(other_dir.join("snapshot.json"), &snapshot).unwrap();
    std::fs::copy(other_dir.join("snapshot.json.sig"), &signature).unwrap();
    set_mtime(&snapshot, now() + 20);
    host_a.refused("signature does not match");

    // The directory changes: a new snapshot with a higher sequence number
    // reaches the hosts (the first publisher's folder is its own again).
    std::fs::write(&snapshot, &first).unwrap();
    std::fs::write(&signature, &first_sig).unwrap();
    server
        .state()
        .add_entity("fleet-newcomer", FIRST_UID + 5000, "pw");
    server.state().set_entity_meta("fleet-newcomer", |m| {
        m.primary_group = Some("ng_users".to_owned())
    });
    publish(&key, &out_dir);
    let second = std::fs::read(&snapshot).unwrap();
    let second_sig = std::fs::read(&signature).unwrap();
    assert_ne!(second, first);
    ok(host_a.refresh(), "host a, new snapshot");
    let seen = lookups(&host_a.cache(), "getent passwd fleet-newcomer\n");
    assert!(seen.contains("fleet-newcomer:*:"), "{seen}");

    // The older snapshot put back (validly signed, lower sequence number).
    std::fs::write(&snapshot, &first).unwrap();
    std::fs::write(&signature, &first_sig).unwrap();
    set_mtime(&snapshot, now() + 30);
    host_a.refused("is lower than");
    std::fs::write(&snapshot, &second).unwrap();
    std::fs::write(&signature, &second_sig).unwrap();

    // A host with a short maximum age refuses a snapshot older than that.
    std::thread::sleep(Duration::from_millis(2100));
    publish(&key, &out_dir);
    let host_c = Host::new(
        dir.path(),
        "c",
        &format!("{fleet}snapshot_max_age_s = 1\nmax_shrink_percent = 100\n"),
    );
    let out = host_c.refresh();
    // The first publish of this directory is over 2 s old by now, unless
    // the last publish rewrote it (it did not: unchanged and fresh).
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than snapshot_max_age_s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!host_c.cache_dir.join("nss.cache").exists());
}
