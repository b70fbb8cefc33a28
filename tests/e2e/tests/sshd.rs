//! A real OpenSSH end to end: Debian's sshd, run by hand on a loopback port
//! in a private mount namespace, with the test server, a refreshed cache,
//! the built modules where glibc and libpam look by default, the PAM
//! service `sshd` stacked by `pam-auth-update` from the shipped profiles,
//! and the shipped sshd drop-in enabled by its documented command. The
//! `ssh` client (BatchMode, keys made here) and `sshpass` log in.
//!
//! The namespace (see [`NAMESPACE_SCRIPT`]) overlays `/etc`, the multiarch
//! library folder, `/usr/sbin` and `/usr/share/pam-configs` with folders of
//! this test, mounts tmpfs on `/var/lib`, `/run` and `/dev` (with the usual
//! nodes and `/dev/log` bound to a socket this process reads) and binds a
//! scratch folder on `/home`. The host's real `/etc/passwd` and
//! `/etc/group` stay visible (one local test user is added in the overlay).
//! Nothing of the host is changed; the namespace ends with its holder
//! process. Needs root and `scripts/setup.sh`'s packages (openssh-server,
//! openssh-client, sshpass).

#[path = "pam_support/mod.rs"]
mod pam_support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use netauth_testserver::{generate_tls_identity, Options, TestServer};

/// Sets the namespace up, prints READY and waits; everything else runs in
/// it through `nsenter`. `$1` is the test folder.
const NAMESPACE_SCRIPT: &str = r#"
set -eu
T="$1"
overlay() { # lower name
  mount -t overlay "e2e-$2" -o "lowerdir=$1,upperdir=$T/$2.up,workdir=$T/$2.wk" "$1"
}
overlay /etc etc
overlay "$(readlink -f /lib/x86_64-linux-gnu)" lib
overlay "$(readlink -f /usr/sbin)" sbin
overlay /usr/share/pam-configs pamcfg
# pam-auth-update keeps its answers in debconf's database.
overlay /var/cache/debconf debconf
# /var/lib: a tmpfs, with pam-auth-update's memory of the host's choices.
cp -a /var/lib/pam "$T/varlib-pam"
mount -t tmpfs -o mode=0755 e2e-varlib /var/lib
cp -a "$T/varlib-pam" /var/lib/pam
mkdir -m 0755 /var/lib/netauth
mount --bind "$T/home" /home
mount -t tmpfs -o mode=0755 e2e-run /run
mkdir -m 0755 /run/sshd
mount --bind /dev "$T/hostdev"
mount -t tmpfs -o mode=0755,size=1m e2e-dev /dev
for n in null zero full random urandom tty; do
  touch "/dev/$n"
  mount --bind "$T/hostdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
touch /dev/log
mount --bind "$T/log.sock" /dev/log
echo READY
exec sleep 100000
"#;

const ALLOWED_GROUP: &str = "ssh-users";
const PASSWORD: &str = "alice-ssh-pw-1";

/// The NetAuth users of the test (uid, primary group, groups, locked).
const USERS: &[(&str, i32, &str, &[&str], bool)] = &[
    (
        "sshalice",
        72001,
        ALLOWED_GROUP,
        &[ALLOWED_GROUP, "ssh-devs"],
        false,
    ),
    // Not in allow_groups.
    ("sshbob", 72002, "ssh-devs", &["ssh-devs"], false),
    ("sshcarol", 72003, ALLOWED_GROUP, &[ALLOWED_GROUP], true),
    // Removed from the server after the refresh.
    ("sshdave", 72004, ALLOWED_GROUP, &[ALLOWED_GROUP], false),
    // Logs in with the server stopped.
    ("sshfrank", 72005, ALLOWED_GROUP, &[ALLOWED_GROUP], false),
    // Its key is removed on the server while it is up.
    ("sshgina", 72006, ALLOWED_GROUP, &[ALLOWED_GROUP], false),
];
const GROUPS: &[(&str, i32)] = &[(ALLOWED_GROUP, 73001), ("ssh-devs", 73002)];
const LOCAL_USER: &str = "e2e-sshlocal";

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the sshd test runs as root");
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is missing: run scripts/setup.sh (openssh-server, openssh-client, sshpass)");
}

/// Builds (once) and returns the `netauth-unix` binary.
fn netauth_unix_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The PAM module's build folder is the one of this profile.
        let profile_dir = pam_support::built_module()
            .parent()
            .expect("profile folder")
            .to_owned();
        if let Ok(cargo) = std::env::var("CARGO") {
            let mut cmd = Command::new(cargo);
            cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "netauth-unix",
                    "--bin",
                    "netauth-unix",
                ]);
            if profile_dir.ends_with("release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().expect("cargo build").success());
        }
        let bin = profile_dir.join("netauth-unix");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

fn repository_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn mkdir(path: &Path, mode: u32) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn write(path: &Path, text: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn copy(from: &Path, to: &Path, mode: u32) {
    let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    write(to, bytes, mode);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ssh-keygen -t ed25519` into `path`; returns the public key line.
fn keygen(path: &Path, comment: &str) -> String {
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_owned()
}

/// A login's outcome.
#[derive(Debug)]
struct Login {
    code: Option<i32>,
    stdout: String,
    /// Shown in failure messages (ssh's own diagnostics).
    #[allow(dead_code)]
    stderr: String,
}

impl Login {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

struct World {
    dir: tempfile::TempDir,
    server: Option<TestServer>,
    holder: Child,
    holder_pid: u32,
    sshd: Option<Child>,
    port: u16,
    /// What the namespace's processes sent to /dev/log, read all along by
    /// `drain`: a datagram socket's queue holds a few messages only, and a
    /// module whose syslog() blocks on a full queue stalls the login.
    logged: Arc<Mutex<Vec<String>>>,
    stop_drain: Arc<AtomicBool>,
    drain: Option<std::thread::JoinHandle<()>>,
    /// The NetAuth users' key, the local user's key, a key nobody has.
    key: PathBuf,
    local_key: PathBuf,
    stranger_key: PathBuf,
    public_key: String,
}

impl Drop for World {
    fn drop(&mut self) {
        // Only what this test started, by pid.
        if let Some(mut sshd) = self.sshd.take() {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        self.stop_drain.store(true, Ordering::SeqCst);
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl World {
    fn new() -> World {
        require_root();
        for t in [
            "sshd",
            "ssh",
            "ssh-keygen",
            "sshpass",
            "pam-auth-update",
            "nsenter",
        ] {
            tool(t);
        }
        let module = pam_support::built_module();
        let nss_dir = netauth_e2e::nss::nss_module_dir();
        let binary = netauth_unix_binary();

        let dir = tempfile::Builder::new()
            .prefix("netauth-sshd-e2e-")
            .tempdir()
            .expect("temp dir");
        let t = dir.path().to_owned();
        for name in ["etc", "lib", "sbin", "pamcfg", "debconf"] {
            mkdir(&t.join(format!("{name}.up")), 0o755);
            mkdir(&t.join(format!("{name}.wk")), 0o755);
        }
        mkdir(&t.join("home"), 0o755);
        mkdir(&t.join("hostdev"), 0o755);

        // The server and its directory.
        let server = TestServer::start(Options {
            tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
            ..Options::default()
        });
        let key = t.join("netauth_key");
        let public_key = keygen(&key, "netauth@e2e");
        let local_key = t.join("local_key");
        let local_public = keygen(&local_key, "local@e2e");
        let stranger_key = t.join("stranger_key");
        keygen(&stranger_key, "stranger@e2e");
        let d = server.state();
        for (name, number) in GROUPS {
            d.add_group(name, *number, name, None);
        }
        for (id, number, primary, groups, locked) in USERS {
            let secret = if *id == "sshalice" {
                PASSWORD.to_owned()
            } else {
                format!("{id}-pw")
            };
            d.add_entity(id, *number, &secret);
            let (primary, key_line) = (primary.to_string(), format!("SSH:{public_key}"));
            d.set_entity_meta(id, |m| {
                m.primary_group = Some(primary);
                m.shell = Some("/bin/sh".into());
                m.keys = vec![key_line];
            });
            for g in *groups {
                d.add_member(id, g);
            }
            if *locked {
                d.lock(id, true);
            }
        }

        // Files the namespace sees: modules where glibc and libpam look,
        // the binary where the drop-in names it, the shipped profiles.
        copy(
            &nss_dir.join("libnss_netauth.so.2"),
            &t.join("lib.up/libnss_netauth.so.2"),
            0o644,
        );
        mkdir(&t.join("lib.up/security"), 0o755);
        copy(module, &t.join("lib.up/security/pam_netauth.so"), 0o644);
        copy(binary, &t.join("sbin.up/netauth-unix"), 0o755);
        copy(
            &repository_file("packaging/debian/pam-config"),
            &t.join("pamcfg.up/netauth"),
            0o644,
        );
        copy(
            &repository_file("packaging/debian/pam-config-mkhomedir"),
            &t.join("pamcfg.up/netauth-mkhomedir"),
            0o644,
        );

        // /etc: config, certificate, nsswitch, sshd, PAM service, local user.
        let etc = t.join("etc.up");
        mkdir(&etc.join("netauth"), 0o755);
        write(
            &etc.join("netauth/tls.pem"),
            server.cert_pem().expect("TLS"),
            0o644,
        );
        write(
            &etc.join("netauth/config.toml"),
            format!(
                "[core]\nserver = \"127.0.0.1\"\nport = {}\n\n[tls]\ncertificate = \"tls.pem\"\n\n\
                 [unix]\nconnect_timeout_ms = 1000\nrequest_timeout_ms = 2000\n\n\
                 [unix.refresh]\nmin_uid = 1000\n\n\
                 [unix.pam]\nallow_groups = [\"{ALLOWED_GROUP}\"]\n\n\
                 [unix.ssh]\nrequest_timeout_ms = 1000\n",
                server.port()
            ),
            0o644,
        );
        write(
            &etc.join("nsswitch.conf"),
            "passwd: files netauth\ngroup: files netauth\nshadow: files\nhosts: files\n",
            0o644,
        );
        // The shipped drop-in, disabled as shipped; enabled below by its
        // own documented command.
        mkdir(&etc.join("ssh/sshd_config.d"), 0o755);
        copy(
            &repository_file("packaging/common/sshd-netauth.conf"),
            &etc.join("ssh/sshd_config.d/netauth.conf"),
            0o644,
        );
        let host_key = etc.join("ssh/e2e_host_ed25519_key");
        keygen(&host_key, "host@e2e");
        std::fs::set_permissions(&host_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let port = free_port();
        write(
            &etc.join("ssh/e2e_sshd_config"),
            format!(
                "# As Debian's sshd_config: the drop-ins first.\n\
                 Include /etc/ssh/sshd_config.d/*.conf\n\
                 Port {port}\nListenAddress 127.0.0.1\n\
                 HostKey /etc/ssh/e2e_host_ed25519_key\nPidFile none\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys\n\
                 StrictModes yes\nPermitRootLogin no\nUseDNS no\nLogLevel VERBOSE\n\
                 MaxStartups 100\n"
            ),
            0o644,
        );
        // What Debian's /etc/pam.d/sshd stacks, without the modules a
        // container cannot run (pam_loginuid needs the audit capability).
        write(
            &etc.join("pam.d/sshd"),
            "@include common-auth\naccount required pam_nologin.so\n@include common-account\n\
             @include common-session\n@include common-password\n",
            0o644,
        );
        // A local user with its own key, next to the host's real accounts.
        let mut passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
        assert!(!passwd.contains(LOCAL_USER));
        passwd.push_str(&format!(
            "{LOCAL_USER}:x:4242:100:E2E local:/home/{LOCAL_USER}:/bin/sh\n"
        ));
        write(&etc.join("passwd"), passwd, 0o644);
        let mut shadow = std::fs::read_to_string("/etc/shadow").expect("/etc/shadow");
        shadow.push_str(&format!("{LOCAL_USER}:*:19000:0:99999:7:::\n"));
        write(&etc.join("shadow"), shadow, 0o640);
        let local_home = t.join("home").join(LOCAL_USER);
        mkdir(&local_home.join(".ssh"), 0o700);
        write(
            &local_home.join(".ssh/authorized_keys"),
            format!("{local_public}\n"),
            0o600,
        );
        for p in [
            &local_home,
            &local_home.join(".ssh"),
            &local_home.join(".ssh/authorized_keys"),
        ] {
            std::os::unix::fs::chown(p, Some(4242), Some(100)).expect("chown");
        }
        std::fs::set_permissions(&local_home, std::fs::Permissions::from_mode(0o755)).unwrap();

        let log = UnixDatagram::bind(t.join("log.sock")).expect("log socket");
        // As /dev/log is: everybody logs (ssh-keys runs as nobody).
        std::fs::set_permissions(t.join("log.sock"), std::fs::Permissions::from_mode(0o666))
            .expect("chmod log socket");
        log.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let logged = Arc::new(Mutex::new(Vec::new()));
        let stop_drain = Arc::new(AtomicBool::new(false));
        let drain = {
            let (logged, stop) = (logged.clone(), stop_drain.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(n) = log.recv(&mut buf) {
                        let line = text(&buf[..n]);
                        logged.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                    }
                }
            })
        };

        let mut holder = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                NAMESPACE_SCRIPT,
                "sh",
            ])
            .arg(&t)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        let holder_pid = holder.id();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read READY");
        assert_eq!(line.trim(), "READY", "namespace setup failed");

        let mut world = World {
            dir,
            server: Some(server),
            holder,
            holder_pid,
            sshd: None,
            port,
            logged,
            stop_drain,
            drain: Some(drain),
            key,
            local_key,
            stranger_key,
            public_key,
        };

        // The PAM stack as the package's postinst makes it.
        let out = world.inside(&["pam-auth-update", "--package"]);
        assert!(
            out.status.success(),
            "pam-auth-update: {}",
            text(&out.stderr)
        );
        let session = world.inside(&["cat", "/etc/pam.d/common-session"]);
        let session = text(&session.stdout);
        assert!(session.contains("pam_mkhomedir.so"), "{session}");
        assert!(session.contains("pam_netauth.so"), "{session}");
        // The drop-in, enabled by the command its own comment documents.
        let dropin = std::fs::read_to_string(repository_file("packaging/common/sshd-netauth.conf"))
            .expect("drop-in");
        let enable = dropin
            .lines()
            .find_map(|l| {
                let at = l.find("sed -i ")?;
                let cmd = &l[at..];
                Some(cmd.split(" && ").next().unwrap_or(cmd).to_owned())
            })
            .expect("the drop-in documents its enable command");
        let out = world.inside(&["sh", "-c", &enable]);
        assert!(out.status.success(), "{enable}: {}", text(&out.stderr));
        let out = world.inside(&[
            "sshd",
            "-T",
            "-f",
            "/etc/ssh/e2e_sshd_config",
            "-C",
            "user=sshalice,host=localhost,addr=127.0.0.1",
        ]);
        let effective = text(&out.stdout);
        assert!(
            effective.contains("authorizedkeyscommand /usr/sbin/netauth-unix ssh-keys %u")
                && effective.contains("authorizedkeyscommanduser nobody"),
            "{effective}{}",
            text(&out.stderr)
        );
        // A refresh, as the timer would run it.
        let out = world.inside(&["/usr/sbin/netauth-unix", "refresh"]);
        assert!(out.status.success(), "refresh: {}", text(&out.stderr));
        world.start_sshd();
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("server running")
    }

    /// Runs `argv` inside the namespace (as root).
    fn inside(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.holder_pid.to_string())
            .arg("-m")
            .arg("--")
            .args(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("nsenter")
    }

    fn start_sshd(&mut self) {
        let child = Command::new("nsenter")
            .arg("-t")
            .arg(self.holder_pid.to_string())
            .args([
                "-m",
                "--",
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                "/etc/ssh/e2e_sshd_config",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path("sshd.log")).expect("sshd log"))
            .spawn()
            .expect("start sshd");
        self.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                self.sshd_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    /// Every syslog line so far (pam_netauth and the other PAM modules).
    fn syslog(&mut self) -> String {
        // Lines sent just before are read within the drain's 50 ms.
        std::thread::sleep(Duration::from_millis(100));
        self.logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    fn ssh_base(&self, user: &str) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.port.to_string(), format!("{user}@127.0.0.1")])
        .collect()
    }

    fn run_client(&self, program: &Path, args: &[String]) -> Login {
        let out = Command::new("timeout")
            .arg("60")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the client");
        Login {
            code: out.status.code(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// A key login (BatchMode: no prompt) running `command`.
    fn key_login(&self, user: &str, key: &Path, command: &str) -> Login {
        let mut args: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "PreferredAuthentications=publickey",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(key.display().to_string());
        args.extend(self.ssh_base(user));
        args.push(command.to_owned());
        self.run_client(&tool("ssh"), &args)
    }

    /// A password login through PAM (keyboard-interactive), typed by sshpass.
    fn password_login(&self, user: &str, password: &str, command: &str) -> Login {
        let mut args: Vec<String> = vec![
            "-p".into(),
            password.into(),
            tool("ssh").display().to_string(),
        ];
        args.extend(
            [
                "-o",
                "PreferredAuthentications=keyboard-interactive",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "IdentityAgent=none",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.extend(self.ssh_base(user));
        args.push(command.to_owned());
        self.run_client(&tool("sshpass"), &args)
    }

    /// Gives `user` a home (owned by `uid`) whose authorized_keys holds the
    /// NetAuth key: the key is then accepted by sshd's own file check, so
    /// only the PAM account step can refuse the login.
    fn authorized_keys_file(&self, user: &str, uid: u32, gid: u32) {
        let home = self.path("home").join(user);
        mkdir(&home.join(".ssh"), 0o700);
        write(
            &home.join(".ssh/authorized_keys"),
            format!("{}\n", self.public_key),
            0o600,
        );
        for p in [
            home.clone(),
            home.join(".ssh"),
            home.join(".ssh/authorized_keys"),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The login failed before any command ran (ssh's 255: refused or
    /// disconnected by the server).
    #[track_caller]
    fn assert_refused(&mut self, login: &Login, user: &str, what: &str) {
        assert!(
            login.code == Some(255) && login.stdout.is_empty(),
            "{what}: {user}: {login:?}\nsshd: {}",
            self.sshd_log()
        );
    }

    /// The sshd log lines since `mark` (a length of [`sshd_log`]).
    fn sshd_log_since(&self, mark: usize) -> String {
        self.sshd_log().get(mark..).unwrap_or_default().to_owned()
    }
}

fn uid_of(user: &str) -> u32 {
    USERS
        .iter()
        .find(|u| u.0 == user)
        .map(|u| u.1 as u32)
        .expect("a test user")
}

fn gid_of(group: &str) -> u32 {
    GROUPS
        .iter()
        .find(|g| g.0 == group)
        .map(|g| g.1 as u32)
        .expect("a test group")
}

#[test]
fn netauth_users_log_in_through_a_real_sshd() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut w = World::new();

    // 1. A NetAuth user and their key: in, with the NetAuth groups, in a
    // home the login made.
    let home = w.path("home/sshalice");
    assert!(!home.exists());
    let login = w.key_login("sshalice", &w.key.clone(), "id; pwd; ls -a");
    assert!(
        login.ok(),
        "{login:?}\nsshd: {}\nsyslog: {}",
        w.sshd_log(),
        w.syslog()
    );
    let mut lines = login.stdout.lines();
    let id = lines.next().unwrap_or_default();
    assert!(
        id.starts_with("uid=72001(sshalice) gid=73001(ssh-users)"),
        "{id}"
    );
    assert!(id.contains("73002(ssh-devs)"), "{id}");
    assert_eq!(lines.next(), Some("/home/sshalice"), "{}", login.stdout);
    assert!(
        login.stdout.contains(".profile"),
        "skel copied: {}",
        login.stdout
    );
    let meta = std::fs::metadata(&home).expect("the login made the home");
    assert_eq!((meta.uid(), meta.gid()), (72001, 73001));
    assert!(meta.is_dir());
    // Debian's login.defs (UMASK 022, no HOME_MODE): as useradd makes them.
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert!(w.sshd_log().contains("Accepted publickey for sshalice"));

    // 2. Password logins through PAM (keyboard-interactive).
    let login = w.password_login("sshalice", PASSWORD, "id -un");
    assert!(login.ok(), "{login:?}\nsshd: {}", w.sshd_log());
    assert_eq!(login.stdout.trim(), "sshalice");
    let login = w.password_login("sshalice", "not-the-password", "id -un");
    assert!(!login.ok() && login.stdout.is_empty(), "{login:?}");
    let log = w.sshd_log();
    assert_eq!(
        log.matches("Accepted keyboard-interactive/pam for sshalice")
            .count(),
        1,
        "{log}"
    );

    // 3. Refused: a locked entity with a valid key ...
    let mark = w.sshd_log().len();
    let login = w.key_login("sshcarol", &w.key.clone(), "id");
    w.assert_refused(&login, "sshcarol", "locked, key from the directory");
    // ... also when sshd itself accepts the key (from the user's own
    // authorized_keys): the PAM account step refuses the key login.
    w.authorized_keys_file("sshcarol", uid_of("sshcarol"), gid_of(ALLOWED_GROUP));
    let login = w.key_login("sshcarol", &w.key.clone(), "id");
    w.assert_refused(&login, "sshcarol", "locked, key from authorized_keys");
    let log = w.sshd_log_since(mark);
    assert!(
        log.contains("Access denied for user sshcarol by PAM account configuration"),
        "{log}"
    );
    let syslog = w.syslog();
    assert!(
        syslog
            .lines()
            .any(|l| l.contains("pam_netauth(sshd:account)")
                && l.contains("sshcarol")
                && l.contains("PAM_PERM_DENIED")),
        "{syslog}"
    );

    // ... a user outside allow_groups, whose key ssh-keys does serve: the
    // account step refuses the key login.
    let mark = w.sshd_log().len();
    let login = w.key_login("sshbob", &w.key.clone(), "id");
    w.assert_refused(&login, "sshbob", "not in allow_groups");
    let log = w.sshd_log_since(mark);
    assert!(
        log.contains("Access denied for user sshbob by PAM account configuration"),
        "the key was accepted, PAM refused: {log}"
    );
    assert!(!w.path("home/sshbob").exists(), "no session, no home");

    // ... an entity removed from the server but still cached (NSS still
    // resolves it): ssh-keys serves no key.
    w.server().state().remove_entity("sshdave");
    let resolves = w.inside(&["getent", "passwd", "sshdave"]);
    assert!(
        text(&resolves.stdout).starts_with("sshdave:"),
        "still cached"
    );
    let login = w.key_login("sshdave", &w.key.clone(), "id");
    w.assert_refused(&login, "sshdave", "deleted on the server");

    // A key nobody has is refused for everybody.
    let login = w.key_login("sshalice", &w.stranger_key.clone(), "id");
    w.assert_refused(&login, "sshalice", "a stranger's key");

    // 4. A key removed on the server stops working at once (the cache
    // still has it), and another key added there works at once.
    assert!(w.key_login("sshgina", &w.key.clone(), "true").ok());
    w.server()
        .state()
        .set_entity_meta("sshgina", |m| m.keys.clear());
    let login = w.key_login("sshgina", &w.key.clone(), "true");
    w.assert_refused(&login, "sshgina", "key removed on the server");
    let stranger = std::fs::read_to_string(w.stranger_key.with_extension("pub")).unwrap();
    let line = format!("SSH:{}", stranger.trim());
    w.server()
        .state()
        .set_entity_meta("sshgina", |m| m.keys = vec![line]);
    assert!(w.key_login("sshgina", &w.stranger_key.clone(), "true").ok());

    // 5. A local user's key login is untouched by our modules.
    let before = w.syslog().len();
    let login = w.key_login(LOCAL_USER, &w.local_key.clone(), "id -un; pwd");
    assert!(login.ok(), "{login:?}\nsshd: {}", w.sshd_log());
    assert_eq!(login.stdout, format!("{LOCAL_USER}\n/home/{LOCAL_USER}\n"));
    let after = w.syslog();
    let ours: Vec<&str> = after[before..]
        .lines()
        .filter(|l| l.contains("pam_netauth(sshd:auth") || l.contains("pam_netauth(sshd:account"))
        .collect();
    assert!(
        ours.is_empty(),
        "pam_netauth decided for the local user: {ours:?}"
    );
    let skel = w.path(&format!("home/{LOCAL_USER}/.profile"));
    assert!(
        !skel.exists(),
        "pam_mkhomedir touched the local user's home"
    );
    // The NetAuth key is no key of the local user's.
    let login = w.key_login(LOCAL_USER, &w.key.clone(), "true");
    w.assert_refused(&login, LOCAL_USER, "a NetAuth key for the local user");

    // 6. The server stopped: key logins work from the cached keys (and
    // the account step decides from the cache).
    w.server.take().expect("server").shutdown();
    let login = w.key_login("sshfrank", &w.key.clone(), "id -un; pwd");
    assert!(
        login.ok(),
        "{login:?}\nsshd: {}\nsyslog: {}",
        w.sshd_log(),
        w.syslog()
    );
    assert_eq!(login.stdout, "sshfrank\n/home/sshfrank\n");
    let meta = std::fs::metadata(w.path("home/sshfrank")).expect("home made offline");
    assert_eq!(meta.uid(), 72005);
    // The cache's lock bit still counts offline.
    let login = w.key_login("sshcarol", &w.key.clone(), "id");
    w.assert_refused(&login, "sshcarol", "locked, offline");
    // The local user does not need the server at all.
    assert!(w.key_login(LOCAL_USER, &w.local_key.clone(), "true").ok());
    let syslog = w.syslog();
    assert!(
        syslog.contains("keys from the cache: server unavailable"),
        "ssh-keys says where the keys came from: {syslog}"
    );
}

/// The account step refuses a key login of an entity removed from the
/// server whose key sshd accepts by itself (from the user's own
/// authorized_keys): NSS still resolves the user from the cache, so only
/// pam_netauth's rule for users the server no longer knows can stop it.
#[test]
fn a_deleted_entity_with_its_own_authorized_keys_is_refused_by_the_account_step() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut w = World::new();
    w.authorized_keys_file("sshdave", uid_of("sshdave"), gid_of(ALLOWED_GROUP));
    assert!(w.key_login("sshdave", &w.key.clone(), "true").ok());
    w.server().state().remove_entity("sshdave");
    let mark = w.sshd_log().len();
    let login = w.key_login("sshdave", &w.key.clone(), "id");
    w.assert_refused(&login, "sshdave", "deleted, key from authorized_keys");
    let log = w.sshd_log_since(mark);
    assert!(
        log.contains("Access denied for user sshdave by PAM account configuration"),
        "{log}"
    );
}
