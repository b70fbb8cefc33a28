//! Interop: NetAuth's published Python client (PyPI `netauth` 0.1.0, with
//! grpcio and protobuf) drives the test server binary through
//! tests/interop/interop.py, which asserts every answer. The venv is made
//! under the target folder on first use (python3 -m venv, pip from PyPI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Pinned: the versions this test was written and checked against.
const PIP_PACKAGES: &[&str] = &["netauth==0.1.0", "grpcio==1.85.1", "protobuf==7.36.2"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netauth-testserver"))
}

/// `target/` (the folder above the profile folder holding the binary).
fn target_dir() -> PathBuf {
    let bin = server_binary();
    bin.parent()
        .and_then(Path::parent)
        .expect("binary lives in target/<profile>/")
        .to_path_buf()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv with the pinned packages, made if missing or different.
fn venv_python() -> PathBuf {
    let venv = target_dir().join("interop-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("netauth-interop.stamp");
    let want = PIP_PACKAGES.join(" ");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return python;
    }
    let t = Instant::now();
    run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PIP_PACKAGES),
        "pip install of the NetAuth Python client",
    );
    std::fs::write(&stamp, &want).expect("write venv stamp");
    eprintln!("interop: venv made in {:.1}s", t.elapsed().as_secs_f64());
    python
}

/// The server binary as a child process; killed (by its own PID) on drop.
struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    log: mpsc::Receiver<String>,
}

impl ServerProcess {
    fn start(extra: &[&str]) -> ServerProcess {
        let fixture = manifest_dir().join("fixtures/sample.toml");
        let mut child = Command::new(server_binary())
            .arg("--fixture")
            .arg(&fixture)
            .arg("--log-calls")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start netauth-testserver");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server announces LISTENING within 30 s");
        let port: u16 = line
            .trim()
            .strip_prefix("LISTENING 127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let stderr = child.stderr.take().expect("stderr");
        let (log_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = log_tx.send(l);
            }
        });
        ServerProcess {
            child,
            stdin,
            port,
            log,
        }
    }

    /// Closes stdin; the server must exit by itself, successfully.
    fn stop(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "server exit status {status}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log.try_iter().collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the script; returns its stdout. Fails the test on a non-zero exit.
fn run_script(python: &Path, config: &Path, extra: &[&str]) -> String {
    let dir = config.parent().expect("config folder");
    let out_path = dir.join("script.out");
    let out = std::fs::File::create(&out_path).expect("script output file");
    let err = out.try_clone().expect("clone file");
    let script = manifest_dir().join("../interop/interop.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run interop.py");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "interop.py still running after 120 s:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "interop.py failed ({status}):\n{output}");
    output
}

fn host_from(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("netauth 0.1.0 on "))
        .expect("script names the client version and host")
        .trim()
        .to_string()
}

#[test]
fn python_client_against_the_server_binary() {
    let python = venv_python();
    let t = Instant::now();

    // TLS, with a certificate path relative to the config file's folder.
    let dir = tempfile::tempdir().expect("temp dir");
    let tls_dir = dir.path().to_str().expect("utf-8 temp path");
    let server = ServerProcess::start(&["--tls-dir", tls_dir]);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[core]\nserver = \"localhost\"\nport = {}\n\n[tls]\ncertificate = \"tls.pem\"\n",
            server.port
        ),
    )
    .expect("write config");
    let output = run_script(&python, &config, &[]);
    assert!(output.contains(" passed, 0 failed"), "{output}");
    let host = host_from(&output);
    let log = server.stop();
    let has = |needle: &str| log.iter().any(|l| l.contains(needle));
    assert!(
        has(&format!("client-name={host} service-name=netauth-python")),
        "{log:#?}"
    );
    assert!(has("CALL EntityCreate client-name="), "{log:#?}");
    assert!(
        has("service-name=interop-admin authorization=yes"),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .filter(|l| l.starts_with("CALL AuthEntity"))
            .all(|l| l.ends_with("authorization=no")),
        "AuthEntity needs no token"
    );

    // Plain text (tls.pwn_me).
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(&["--plain"]);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[core]\nserver = \"127.0.0.1\"\nport = {}\n\n[tls]\npwn_me = true\n",
            server.port
        ),
    )
    .expect("write config");
    run_script(&python, &config, &[]);
    server.stop();

    // A read-only replica.
    let server = ServerProcess::start(&["--plain", "--read-only"]);
    std::fs::write(
        &config,
        format!(
            "[core]\nserver = \"127.0.0.1\"\nport = {}\n\n[tls]\npwn_me = true\n",
            server.port
        ),
    )
    .expect("write config");
    let output = run_script(&python, &config, &["--read-only"]);
    assert!(output.contains(" passed, 0 failed"), "{output}");
    server.stop();
    eprintln!(
        "interop: three runs of interop.py in {:.1}s",
        t.elapsed().as_secs_f64()
    );
}
