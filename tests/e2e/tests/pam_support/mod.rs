//! Harness of the PAM end-to-end tests: real libpam, the built
//! `pam_netauth.so`, pamtester or our own driver, each command run in a
//! private mount namespace where
//!
//! - `/etc/pam.d` is a test folder with the services a test writes,
//! - `/var/lib` is a test folder (the module's offline cache lives at
//!   `/var/lib/netauth/nss.cache`),
//! - `/dev` is a small tmpfs with the usual character devices bound in and
//!   `/dev/log` bound to a datagram socket this process reads: every line
//!   the module logs is captured, nothing reaches the host's syslog,
//! - optionally `/etc/passwd` and `/etc/shadow` hold a test local user.
//!
//! Nothing of the host is changed. Needs root (CI runs as root).

#![allow(dead_code)]

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use netauth_testserver::{generate_tls_identity, ExpansionRule, Options, TestServer};

/// Password of the local (pam_unix) test user `localuser`.
pub const LOCAL_PASSWORD: &str = "local-pw-1";
/// `openssl passwd -6 -salt e2esaltE2E local-pw-1`.
const LOCAL_HASH: &str =
    "$6$e2esaltE2E$PfErDYyOk2pmtzng0EXQo.3tYHmUjcvmu99SJqK.EIUpkhroMVIK2xsRuOFhDd.fzkZfzwRJ7zr9hLiy8u66g0";

const NAMESPACE_SCRIPT: &str = r#"
set -e
T="$1"; shift
mount --bind "$T/pam.d" /etc/pam.d
mount --bind "$T/varlib" /var/lib
if [ -f "$T/passwd" ]; then
  mount --bind "$T/passwd" /etc/passwd
  mount --bind "$T/shadow" /etc/shadow
fi
mount --bind /dev "$T/hostdev"
mount -t tmpfs -o mode=0755,size=1m pam-e2e-dev /dev
for n in null zero full random urandom tty; do
  touch "/dev/$n"
  mount --bind "$T/hostdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
touch /dev/log
mount --bind "$T/log.sock" /dev/log
exec "$@"
"#;

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Builds (once per test process) and returns the module under test.
pub fn built_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("profile directory")
            .to_owned();
        if let Ok(cargo) = std::env::var("CARGO") {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let mut cmd = Command::new(cargo);
            cmd.current_dir(&workspace)
                .args(["build", "--quiet", "-p", "pam_netauth"]);
            if profile_dir.ends_with("release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p pam_netauth");
            assert!(status.success(), "cargo build -p pam_netauth failed");
        }
        let module = profile_dir.join("libpam_netauth.so");
        assert!(module.exists(), "{} missing", module.display());
        module
    })
}

/// One test's private world.
pub struct Env {
    pub dir: tempfile::TempDir,
    log: UnixDatagram,
    /// `pam_netauth.so` (a link to the build output, so log lines carry the
    /// installed name).
    pub module: PathBuf,
    logged: Vec<String>,
}

impl Env {
    pub fn new() -> Env {
        let built = built_module();
        let dir = tempfile::Builder::new()
            .prefix("pam-e2e")
            .tempdir()
            .expect("temp dir");
        for sub in ["pam.d", "varlib/netauth", "hostdev"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        // Like a real system: unknown services are denied (and libpam
        // does not complain about a missing "other").
        std::fs::write(
            dir.path().join("pam.d/other"),
            "auth required pam_deny.so\naccount required pam_deny.so\n\
             password required pam_deny.so\nsession required pam_deny.so\n",
        )
        .expect("write pam.d/other");
        let module = dir.path().join("pam_netauth.so");
        std::os::unix::fs::symlink(built, &module).expect("link module");
        let log = UnixDatagram::bind(dir.path().join("log.sock")).expect("bind log socket");
        log.set_nonblocking(true).expect("nonblocking");
        Env {
            dir,
            log,
            module,
            logged: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.toml")
    }

    pub fn write_config(&self, body: &str) {
        std::fs::write(self.config_path(), body).expect("write config");
    }

    /// Writes `/etc/pam.d/<name>`; `@MODULE@` and `@CONFIG@` are replaced.
    pub fn service(&self, name: &str, body: &str) {
        let text = body
            .replace("@MODULE@", &self.module.display().to_string())
            .replace(
                "@CONFIG@",
                &format!("config={}", self.config_path().display()),
            );
        std::fs::write(self.dir.path().join("pam.d").join(name), text).expect("write service");
    }

    /// Adds a local user `localuser` (password [`LOCAL_PASSWORD`]) through
    /// test copies of /etc/passwd and /etc/shadow.
    /// `netauth_users` get passwd lines too, as NSS would give them.
    pub fn with_local_user(&self, netauth_users: &[&str]) {
        let mut passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        passwd.push_str("localuser:x:4242:4242:Local Test User:/nonexistent:/bin/sh\n");
        // The real local accounts, without the NetAuth stand-ins below: what
        // `[unix.refresh] local_passwd` names in tests where those stand-ins
        // play NSS's part (see `local_accounts_config`).
        std::fs::write(self.path("local-passwd"), &passwd).expect("write local-passwd");
        for (i, name) in netauth_users.iter().enumerate() {
            passwd.push_str(&format!(
                "{name}:x:{}:5001::/nonexistent:/bin/sh\n",
                30000 + i
            ));
        }
        std::fs::write(self.path("passwd"), passwd).expect("write passwd");
        let mut shadow =
            format!("root:*:19000:0:99999:7:::\nlocaluser:{LOCAL_HASH}:19000:0:99999:7:::\n");
        for name in netauth_users {
            shadow.push_str(&format!("{name}:*:19000:0:99999:7:::\n"));
        }
        std::fs::write(self.path("shadow"), shadow).expect("write shadow");
    }

    /// Installs a cache at /var/lib/netauth/nss.cache (root's, mode 0644,
    /// as the refresh writes it).
    pub fn write_cache(&self, content: &netauth_cache::CacheContent) {
        use std::os::unix::fs::PermissionsExt;
        let bytes = netauth_cache::encode(content).expect("encode cache");
        let path = self.path("varlib/netauth/nss.cache");
        std::fs::write(&path, bytes).expect("write cache");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .expect("chmod cache");
    }

    /// Removes the cache: no user is a NetAuth user then.
    pub fn remove_cache(&self) {
        std::fs::remove_file(self.path("varlib/netauth/nss.cache")).expect("remove cache");
    }

    /// Runs `argv` inside the namespace with `stdin`.
    pub fn run(&mut self, argv: &[&str], stdin: &str) -> Run {
        let start = Instant::now();
        let mut child = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                NAMESPACE_SCRIPT,
                "sh",
            ])
            .arg(self.dir.path())
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("wait");
        let run = Run {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        };
        self.drain_log();
        assert!(
            !run.stderr.contains("mount:") && !run.stderr.contains("unshare:"),
            "namespace setup failed: {}",
            run.stderr
        );
        run
    }

    /// `pamtester -v SERVICE USER OPS...`, password lines on stdin.
    pub fn pamtester(&mut self, service: &str, user: &str, ops: &[&str], stdin: &str) -> Run {
        let mut argv = vec!["pamtester", "-v", "-I", "rhost=192.0.2.10", service, user];
        argv.extend_from_slice(ops);
        self.run(&argv, stdin)
    }

    /// Our driver program (see src/bin/pam_driver.rs).
    pub fn driver(&mut self, args: &[&str]) -> Run {
        let mut argv = vec![env!("CARGO_BIN_EXE_pam_driver")];
        argv.extend_from_slice(args);
        self.run(&argv, "")
    }

    fn drain_log(&mut self) {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.log.recv(&mut buf) {
                Ok(n) => self
                    .logged
                    .push(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("log socket: {e}"),
            }
        }
    }

    /// Reads and counts log messages on a thread until the drain is
    /// dropped; for runs that log more than the socket queue holds.
    pub fn spawn_log_drain(&self) -> LogDrain {
        let socket = self.log.try_clone().expect("clone log socket");
        socket.set_nonblocking(false).expect("blocking");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut count = 0usize;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if socket.recv(&mut buf).is_ok() {
                    count += 1;
                }
            }
            count
        });
        LogDrain {
            stop,
            thread: Some(thread),
        }
    }

    /// Every syslog message sent so far (raw, with `<PRI>` prefix).
    pub fn syslog(&mut self) -> &[String] {
        self.drain_log();
        &self.logged
    }

    /// Lines our module logged (tagged `pam_netauth(`).
    pub fn module_log(&mut self) -> Vec<String> {
        self.syslog()
            .iter()
            .filter(|l| l.contains("pam_netauth("))
            .cloned()
            .collect()
    }

    /// The last decision line logged by the module.
    pub fn last_decision(&mut self) -> String {
        self.module_log()
            .into_iter()
            .rev()
            .find(|l| l.contains(" outcome="))
            .unwrap_or_default()
    }
}

/// See [`Env::spawn_log_drain`].
pub struct LogDrain {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl LogDrain {
    /// Stops draining; returns how many messages were read.
    pub fn finish(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for LogDrain {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `pam_strerror` texts pamtester prints, per code we assert on.
pub const AUTH_ERR: &str = "Authentication failure";
pub const AUTHINFO_UNAVAIL: &str = "Authentication service cannot retrieve authentication info";
pub const PERM_DENIED: &str = "Permission denied";
pub const USER_UNKNOWN: &str = "User not known to the underlying authentication module";
pub const SERVICE_ERR: &str = "Error in service module";
pub const AUTHTOK_ERR: &str = "Authentication token manipulation error";

pub fn assert_fails_with(run: &Run, message: &str) {
    assert!(
        !run.success,
        "expected failure {message:?}, got success: {}",
        run.text()
    );
    assert!(
        run.text().contains(&format!("pamtester: {message}")),
        "expected {message:?}: {}",
        run.text()
    );
}

pub fn assert_ok(run: &Run) {
    assert!(run.success, "expected success: {}", run.text());
}

/// The directory every test starts from (secrets `<id>-pw`):
///
/// | entity | groups (direct) | effective |
/// |---|---|---|
/// | alice | developers | developers, engineering (INCLUDE developers) |
/// | bob | staff | staff |
/// | dave | developers, interns | developers, interns (engineering EXCLUDEs interns) |
/// | erin (locked) | developers | developers, engineering |
pub struct World {
    pub server: TestServer,
    pub cert: PathBuf,
}

pub fn seed(server: &TestServer) {
    let d = server.state();
    for (name, number) in [
        ("staff", 5001),
        ("developers", 5002),
        ("interns", 5004),
        ("engineering", 5005),
    ] {
        d.add_group(name, number, name, None);
    }
    d.add_rule("engineering", ExpansionRule::Include, "developers");
    d.add_rule("engineering", ExpansionRule::Exclude, "interns");
    for (id, number, groups) in [
        ("alice", 2001, &["developers"][..]),
        ("bob", 2002, &["staff"][..]),
        ("dave", 2003, &["developers", "interns"][..]),
        ("erin", 2004, &["developers"][..]),
    ] {
        d.add_entity(id, number, &format!("{id}-pw"));
        for g in groups {
            d.add_member(id, g);
        }
    }
    d.lock("erin", true);
}

/// The cache the refresh would write for [`seed`]'s directory, now.
pub fn seeded_cache() -> netauth_cache::CacheContent {
    use netauth_cache::{CacheContent, UnixGroup, UnixUser};
    let user = |name: &str, uid: u32, gid: u32, locked: bool| UnixUser {
        name: name.into(),
        uid,
        gid,
        gecos: String::new(),
        home: format!("/home/{name}"),
        shell: "/bin/sh".into(),
        locked,
    };
    let group = |name: &str, gid: u32, members: &[&str]| UnixGroup {
        name: name.into(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    CacheContent {
        user_keys: Default::default(),
        users: vec![
            user("alice", 2001, 5002, false),
            user("bob", 2002, 5001, false),
            user("dave", 2003, 5002, false),
            user("erin", 2004, 5002, true),
        ],
        groups: vec![
            group("staff", 5001, &["bob"]),
            group("developers", 5002, &["alice", "dave", "erin"]),
            group("interns", 5004, &["dave"]),
            group("engineering", 5005, &["alice", "erin"]),
        ],
        user_groups: [
            ("alice", vec![5002, 5005]),
            ("bob", vec![5001]),
            ("dave", vec![5002, 5004]),
            ("erin", vec![5002, 5005]),
        ]
        .into_iter()
        .map(|(name, gids)| (name.to_string(), gids))
        .collect(),
        generated_at: i64::try_from(now.as_secs()).unwrap_or(0),
        source: "test".into(),
    }
}

/// A TLS test server with the seeded directory, its certificate written to
/// `env`, a config (plus `extra` TOML) pointing at it, and the cache a
/// refresh would have written (the module decides only for users it lists).
pub fn start_world(env: &Env, extra: &str) -> World {
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Options::default()
    });
    seed(&server);
    let cert = env.path("tls.pem");
    std::fs::write(&cert, server.cert_pem().expect("tls server")).expect("write cert");
    env.write_config(&config_for(server.port(), &cert, extra));
    env.write_cache(&seeded_cache());
    World { server, cert }
}

/// Config lines making the module take its local accounts from
/// `with_local_user`'s real ones, not from the namespace's /etc/passwd,
/// which also carries NetAuth users for modules that need a passwd entry.
pub fn local_accounts_config(env: &Env) -> String {
    format!(
        "[unix.refresh]\nlocal_passwd = \"{}\"\n",
        env.path("local-passwd").display()
    )
}

/// A config for 127.0.0.1:`port` trusting `cert`, with short deadlines.
pub fn config_for(port: u16, cert: &Path, extra: &str) -> String {
    format!(
        "[core]\nserver = \"127.0.0.1\"\nport = {port}\n\n[tls]\ncertificate = \"{}\"\n\n\
         [unix]\nconnect_timeout_ms = 1500\nrequest_timeout_ms = 2500\n\n{extra}",
        cert.display()
    )
}

/// The plain one-module stack used by most tests.
pub const NETAUTH_ONLY: &str = "\
auth     required @MODULE@ @CONFIG@
account  required @MODULE@ @CONFIG@
password required @MODULE@ @CONFIG@
session  required @MODULE@ @CONFIG@
";

/// The stack `pam-auth-update` builds on Debian from pam_unix's profile, the
/// shipped NetAuth profile (packaging/debian/pam-config, read here, so the
/// test follows the file) and optionally a second directory's lines placed
/// as libpam-sss's profile places them (its priority is below ours):
/// `directory_auth` after our auth line, `directory_account` after ours
/// among the additional account lines. `pam_localuser` reads `local_passwd` instead of
/// the namespace's /etc/passwd, which also carries NSS stand-ins.
pub fn shipped_stack(
    env: &Env,
    directory_auth: Option<&str>,
    directory_account: Option<&str>,
) -> String {
    let profile = include_str!("../../../../packaging/debian/pam-config");
    let block = |name: &str| -> Vec<String> {
        let mut lines = Vec::new();
        let mut inside = false;
        for line in profile.lines() {
            if let Some(body) = line.strip_prefix('\t') {
                if inside {
                    let body = body.replace("pam_netauth.so", "@MODULE@ @CONFIG@").replace(
                        "pam_localuser.so",
                        &format!(
                            "pam_localuser.so file={}",
                            env.path("local-passwd").display()
                        ),
                    );
                    lines.push(body.replace('\t', " "));
                }
            } else {
                inside = line == format!("{name}:");
            }
        }
        assert!(!lines.is_empty(), "no {name} block in pam-config");
        lines
    };
    let ours_auth = block("Auth");
    assert_eq!(ours_auth.len(), 1, "{ours_auth:?}");
    let mut auth = vec!["[success=end default=ignore] pam_unix.so nullok".to_string()];
    auth.extend(ours_auth);
    auth.extend(directory_auth.map(str::to_owned));
    // success=end: jump over the rest of the primary block and pam_deny.
    let count = auth.len();
    let mut text = String::new();
    for (i, line) in auth.iter().enumerate() {
        let jump = (count - i).to_string();
        text.push_str(&format!(
            "auth {}\n",
            line.replace("success=end", &format!("success={jump}"))
        ));
    }
    text.push_str("auth requisite pam_deny.so\nauth required pam_permit.so\n");
    text.push_str(
        "account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\n\
         account requisite pam_deny.so\naccount required pam_permit.so\n",
    );
    for line in block("Account")
        .into_iter()
        .chain(directory_account.map(str::to_owned))
    {
        text.push_str(&format!("account {line}\n"));
    }
    text.push_str("session required pam_permit.so\n");
    for line in block("Session") {
        text.push_str(&format!("session {line}\n"));
    }
    text
}

/// A stand-in for a second directory (SSSD, say) run by pam_exec: it knows
/// `sssuser` (password `sss-pw`) and `ssslocked` (password `sss-pw`, refused
/// in account); every other user is not its own (auth fails, account has no
/// objection, as pam_sss's `user_unknown=ignore`). Returns the script's path.
pub fn fake_directory(env: &Env) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.path("fake-directory");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         case \"$PAM_TYPE:$PAM_USER\" in\n\
           auth:sssuser|auth:ssslocked)\n\
             pw=$(tr -d '\\000')\n\
             [ \"$pw\" = sss-pw ] && exit 0\n\
             exit 1 ;;\n\
           auth:*) exit 1 ;;\n\
           account:ssslocked) exit 1 ;;\n\
           *) exit 0 ;;\n\
         esac\n",
    )
    .expect("write fake directory");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
