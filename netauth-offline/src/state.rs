//! The offline state: "the servers could not be reached; until T, do not
//! wait on them", in a small file (a PAM module has no daemon to remember
//! it between logins).
//!
//! The first transport failure sets T to now + 30 s; each failed probe
//! after T doubles the wait, up to 10 minutes, minus up to a fifth at
//! random (so that a fleet of hosts does not probe in step). Any answer of
//! a server clears it, and so does a successful refresh. The server that
//! answered last is remembered and tried first.
//!
//! ```text
//! netauth-offline-state 1
//! since=<unix s of the first failure, 0: online>
//! until=<unix s of the next probe>
//! backoff_s=<current wait>
//! last_good=<host:port>
//! error=<host:port> <unix s> <one-line error text>
//! ```

use netauth_cache::trusted::Owner;

use crate::files::{field, PrivateDir, StoreError};

const MAGIC: &str = "netauth-offline-state 1";
const STATE_FILE: &str = "state";
/// First wait after a failure.
pub const FIRST_BACKOFF_S: u64 = 30;
/// Longest wait.
pub const MAX_BACKOFF_S: u64 = 600;
/// Longest error text kept per server.
const MAX_ERROR_CHARS: usize = 300;

/// The last failure seen for one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub server: String,
    pub at: u64,
    pub text: String,
}

/// See the [module documentation](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineState {
    /// First failure of this outage; 0 when online.
    pub since: u64,
    /// No server is asked before this time.
    pub until: u64,
    pub backoff_s: u64,
    pub last_good: Option<String>,
    pub errors: Vec<ServerError>,
}

/// One line, bounded, without `=`-confusion (the value runs to the end of
/// the line anyway).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect()
}

fn server_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl OfflineState {
    /// Whether servers are to be skipped at `now`.
    pub fn is_offline(&self, now: u64) -> bool {
        self.since != 0 && now < self.until
    }

    /// Whether an outage is recorded (current or waiting for its probe).
    pub fn in_outage(&self) -> bool {
        self.since != 0
    }

    /// No server answered: starts or prolongs the outage. `jitter` in
    /// [0, 1) takes up to a fifth off the wait.
    pub fn record_failure(&mut self, now: u64, errors: &[(String, String)], jitter: f64) {
        self.backoff_s = if self.since == 0 {
            self.since = now;
            FIRST_BACKOFF_S
        } else {
            self.backoff_s
                .max(FIRST_BACKOFF_S / 2)
                .saturating_mul(2)
                .min(MAX_BACKOFF_S)
        };
        let jitter = jitter.clamp(0.0, 1.0);
        let off = (self.backoff_s as f64 / 5.0 * jitter) as u64;
        self.until = now + self.backoff_s - off;
        for (server, text) in errors {
            self.note_error(server, now, text);
        }
    }

    /// Remembers `text` as `server`'s last error.
    pub fn note_error(&mut self, server: &str, now: u64, text: &str) {
        if !server_name_ok(server) {
            return;
        }
        let entry = ServerError {
            server: server.to_owned(),
            at: now,
            text: one_line(text),
        };
        match self.errors.iter_mut().find(|e| e.server == server) {
            Some(old) => *old = entry,
            None => self.errors.push(entry),
        }
    }

    /// A server answered: the outage is over. Returns whether anything
    /// changed (so that a normal login does not rewrite the file).
    pub fn record_success(&mut self, server: Option<&str>) -> bool {
        let before = self.clone();
        self.since = 0;
        self.until = 0;
        self.backoff_s = 0;
        if let Some(server) = server.filter(|s| server_name_ok(s)) {
            self.last_good = Some(server.to_owned());
        }
        *self != before
    }

    fn encode(&self) -> String {
        let mut text = format!(
            "{MAGIC}\nsince={}\nuntil={}\nbackoff_s={}\n",
            self.since, self.until, self.backoff_s
        );
        if let Some(server) = &self.last_good {
            text.push_str(&format!("last_good={server}\n"));
        }
        for e in &self.errors {
            text.push_str(&format!("error={} {} {}\n", e.server, e.at, e.text));
        }
        text
    }

    fn decode(bytes: &[u8]) -> Result<OfflineState, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
        if text.lines().next() != Some(MAGIC) {
            return Err("not an offline state file".to_owned());
        }
        let number = |key: &str| -> Result<u64, String> {
            field(text, key)
                .ok_or_else(|| format!("no {key}"))?
                .parse()
                .map_err(|_| format!("{key} is not a number"))
        };
        let mut errors = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("error=") {
                let mut parts = rest.splitn(3, ' ');
                let server = parts.next().unwrap_or_default().to_owned();
                let at = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let text = parts.next().unwrap_or_default().to_owned();
                if server_name_ok(&server) {
                    errors.push(ServerError { server, at, text });
                }
            }
        }
        Ok(OfflineState {
            since: number("since")?,
            until: number("until")?,
            backoff_s: number("backoff_s")?,
            last_good: field(text, "last_good")
                .filter(|s| server_name_ok(s))
                .map(str::to_owned),
            errors,
        })
    }
}

/// The state file in the offline folder.
#[derive(Clone, Debug)]
pub struct StateFile {
    dir: PrivateDir,
}

impl StateFile {
    /// The file in [`crate::OFFLINE_DIR`], root's.
    pub fn system() -> StateFile {
        StateFile::at(crate::OFFLINE_DIR, Owner::Root)
    }

    pub fn at(dir: impl Into<std::path::PathBuf>, owner: Owner) -> StateFile {
        StateFile {
            dir: PrivateDir::new(dir, owner),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.file_path(STATE_FILE)
    }

    /// The recorded state; a missing file (or folder) is "online, nothing
    /// known". A damaged file counts as missing: it is rewritten at the
    /// next change, and the worst it can do is cost one probe.
    pub fn read(&self) -> Result<OfflineState, StoreError> {
        match self.dir.read(STATE_FILE) {
            Ok(bytes) => Ok(OfflineState::decode(&bytes).unwrap_or_default()),
            Err(e) if e.is_not_found() => Ok(OfflineState::default()),
            Err(e) => Err(e),
        }
    }

    pub fn write(&self, state: &OfflineState) -> Result<(), StoreError> {
        self.dir.write(STATE_FILE, state.encode().as_bytes(), false)
    }

    /// Ends a recorded outage (a refresh reached a server); keeps the
    /// per-server errors for `status`. Nothing is written when no outage
    /// is recorded or no folder exists.
    pub fn clear(&self, server: Option<&str>) -> Result<(), StoreError> {
        if !crate::files::exists(&self.dir.path) {
            return Ok(());
        }
        let mut state = self.read()?;
        if state.record_success(server) {
            self.write(&state)?;
        }
        Ok(())
    }
}

/// A number in [0, 1) from the kernel's random source (0 if none).
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_minutes_and_success_clears() {
        let mut s = OfflineState::default();
        assert!(!s.is_offline(100));
        let errors = vec![("a:1729".to_owned(), "connection refused\nmore".to_owned())];
        s.record_failure(100, &errors, 0.0);
        assert_eq!((s.since, s.until, s.backoff_s), (100, 130, 30));
        assert!(s.is_offline(129) && !s.is_offline(130));
        let mut waits = Vec::new();
        for probe in 0..8 {
            s.record_failure(1000 + probe, &errors, 0.0);
            waits.push(s.backoff_s);
        }
        assert_eq!(waits, [60, 120, 240, 480, 600, 600, 600, 600]);
        assert_eq!(s.since, 100);
        // Jitter takes at most a fifth off.
        s.record_failure(5000, &errors, 0.999);
        assert!(
            s.until >= 5000 + 480 && s.until <= 5000 + 600,
            "{}",
            s.until
        );
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].text, "connection refused more");
        assert!(s.record_success(Some("b:1729")));
        assert!(!s.in_outage() && !s.is_offline(5001));
        assert_eq!(s.last_good.as_deref(), Some("b:1729"));
        assert!(!s.record_success(Some("b:1729")));
    }

    #[test]
    fn file_round_trip_private_and_damaged_counts_as_missing() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let file = StateFile::at(tmp.path().join("offline"), Owner::RootOrCaller);
        assert_eq!(file.read().unwrap(), OfflineState::default());
        file.clear(None).unwrap();
        assert!(!file.path().exists(), "clear wrote a file for nothing");
        let mut s = OfflineState::default();
        s.record_failure(100, &[("a:1".into(), "boom".into())], 0.5);
        s.last_good = Some("b:2".into());
        file.write(&s).unwrap();
        assert_eq!(file.read().unwrap(), s);
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        file.clear(Some("a:1")).unwrap();
        let cleared = file.read().unwrap();
        assert!(!cleared.in_outage());
        assert_eq!(cleared.last_good.as_deref(), Some("a:1"));
        assert_eq!(cleared.errors.len(), 1);
        std::fs::write(file.path(), "garbage").unwrap();
        assert_eq!(file.read().unwrap(), OfflineState::default());
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(file.read().is_err());
    }
}
