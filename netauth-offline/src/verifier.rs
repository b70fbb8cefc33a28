//! Cached password verifiers: what lets a user who logged in online log in
//! again while the server cannot be reached.
//!
//! A verifier is `HMAC-SHA-256(host key, Argon2id(password, salt))`: the
//! Argon2id output (random 16-byte salt, parameters in the record) keyed
//! with the host's random key, which only root can read. A copy of the
//! records alone cannot be brute-forced; the host key alone says nothing.
//!
//! One record per user, in a file named by the SHA-256 of the user name:
//!
//! ```text
//! netauth-offline-verifier 1
//! user=alice
//! argon2id=m19456,t2,p1
//! salt=<hex>
//! mac=<hex>
//! online_at=<unix seconds of the last online login>
//! failed=<wrong offline passwords since the last success>
//! failed_at=<unix seconds of the last one>
//! ```
//!
//! Concurrent logins of one user (many sshd connections at once) are
//! serialised by an exclusive `flock` on the user's lock file,
//! `.lock.v-<same hex>`, held from reading the record to writing it back in
//! [`VerifierStore::check`] and around the writes of `store`, `forget` and
//! `retain`: the failure counter loses no count, and no more than
//! `failed_attempts` wrong passwords are judged before the lockout. A login
//! waits at most [`LOCK_WAIT`] for the lock, then fails closed ("busy").
//! Lock files are empty; one is made only for a user who has a record, and
//! goes with the record (`forget`, `retain`, which also sweeps any left
//! behind by a failed write).

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use netauth_cache::trusted::Owner;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::files::{field as field_of, hex, unhex, FileLock, PrivateDir, StoreError};

const MAGIC: &str = "netauth-offline-verifier 1";
const HOST_KEY_FILE: &str = "host.key";
const HOST_KEY_BYTES: usize = 32;
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;
/// Prefix of the record files.
pub const RECORD_PREFIX: &str = "v-";
/// Prefix of the lock files: `.lock.` and the record's name. It is not
/// [`RECORD_PREFIX`] (record listings never see a lock) and holds no
/// `.tmp.` (no temporary file of [`PrivateDir::write`] is named so).
const LOCK_PREFIX: &str = ".lock.";
/// Longest wait for another process's hold on a user's record: a login
/// holds it for one Argon2id check (tens of ms).
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How far in the future a record's `online_at` may be (clock skew) and
/// still count.
const MAX_AHEAD_S: u64 = 300;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for VerifierParams {
    /// Chosen with `cargo bench -p netauth-e2e --bench offline_login`
    /// (docs/benchmarks.md): OWASP's second Argon2id line (19 MiB, two
    /// passes), about 41 ms per check on the development machine, adding
    /// about 54 ms to an online login; the first line (46 MiB, one pass)
    /// takes twice as long and comes too close to the 150 ms budget on a
    /// loaded host.
    fn default() -> Self {
        VerifierParams {
            m_kib: 19_456,
            t: 2,
            p: 1,
        }
    }
}

impl VerifierParams {
    fn encode(&self) -> String {
        format!("m{},t{},p{}", self.m_kib, self.t, self.p)
    }

    fn decode(text: &str) -> Option<VerifierParams> {
        let mut parts = text.split(',');
        let mut take = |prefix: char| {
            parts
                .next()
                .and_then(|p| p.strip_prefix(prefix))
                .and_then(|n| n.parse::<u32>().ok())
        };
        let params = VerifierParams {
            m_kib: take('m')?,
            t: take('t')?,
            p: take('p')?,
        };
        // A record that asks for absurd work (a planted one, a typo) must
        // not make a login take minutes or gigabytes.
        let sane = (8..=1_048_576).contains(&params.m_kib)
            && (1..=16).contains(&params.t)
            && (1..=8).contains(&params.p);
        sane.then_some(params)
    }

    fn hasher(&self) -> Result<argon2::Argon2<'static>, StoreError> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(OUTPUT_BYTES))
            .map_err(|e| StoreError::Crypto(format!("Argon2 parameters: {e}")))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// The rules of an offline check (`[unix.pam]` offline_* keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflinePolicy {
    /// Oldest last online login accepted; `None`: no limit.
    pub max_age: Option<Duration>,
    /// Wrong offline passwords after which offline logins are refused for
    /// `failed_delay`; 0: never refused for that.
    pub failed_attempts: u32,
    pub failed_delay: Duration,
}

/// What an offline check found. No variant holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfflineCheck {
    /// The password matches the cached verifier.
    Accepted { age_s: u64 },
    /// It does not; `failed` wrong offline passwords in a row now.
    Wrong { failed: u32 },
    /// No verifier for this user.
    NoVerifier,
    /// The last online login is older than the maximum age.
    TooOld { age_s: u64, max_s: u64 },
    /// Too many wrong offline passwords: refused (before the password is
    /// looked at) for `retry_in_s` more seconds.
    LockedOut { failed: u32, retry_in_s: u64 },
    /// The store cannot be used (not root, untrusted file, damaged record).
    Unusable(String),
}

/// What a record says, without its secret parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    pub online_at: u64,
    pub failed: u32,
    pub failed_at: u64,
}

struct Record {
    user: String,
    params: VerifierParams,
    salt: Vec<u8>,
    mac: Zeroizing<Vec<u8>>,
    info: RecordInfo,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("user", &self.user)
            .field("params", &self.params)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Record {
    fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{MAGIC}\nuser={}\nargon2id={}\nsalt={}\nmac={}\nonline_at={}\nfailed={}\nfailed_at={}\n",
            self.user,
            self.params.encode(),
            hex(&self.salt),
            Zeroizing::new(hex(&self.mac)).as_str(),
            self.info.online_at,
            self.info.failed,
            self.info.failed_at
        ))
    }

    fn decode(bytes: &[u8]) -> Result<Record, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
        if text.lines().next() != Some(MAGIC) {
            return Err("not a verifier record".to_owned());
        }
        let field = |key: &str| field_of(text, key).ok_or_else(|| format!("no {key}"));
        let number = |key: &str| {
            field(key)?
                .parse::<u64>()
                .map_err(|_| format!("{key} is not a number"))
        };
        let user = field("user")?.to_owned();
        let params =
            VerifierParams::decode(field("argon2id")?).ok_or("unusable argon2id parameters")?;
        let salt = unhex(field("salt")?).ok_or("salt is not hex")?;
        let mac = Zeroizing::new(unhex(field("mac")?).ok_or("mac is not hex")?);
        if salt.len() < 8 || mac.len() != OUTPUT_BYTES {
            return Err("salt or mac of the wrong length".to_owned());
        }
        Ok(Record {
            user,
            params,
            salt,
            mac,
            info: RecordInfo {
                online_at: number("online_at")?,
                failed: u32::try_from(number("failed")?).unwrap_or(u32::MAX),
                failed_at: number("failed_at")?,
            },
        })
    }
}

/// The verifiers of this host; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct VerifierStore {
    dir: PrivateDir,
    params: VerifierParams,
    lock_wait: Duration,
}

/// The file name of `user`'s record.
pub fn record_name(user: &str) -> String {
    format!("{RECORD_PREFIX}{}", hex(&Sha256::digest(user.as_bytes())))
}

/// The file name of the lock of the record named `record_name`.
fn lock_name(record_name: &str) -> String {
    format!("{LOCK_PREFIX}{record_name}")
}

/// Nothing at `path` (an error other than "not found", such as a folder
/// this process may not enter, is left to the trusted open to report).
fn is_missing(path: &std::path::Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

fn random(bytes: &mut [u8]) -> Result<(), StoreError> {
    getrandom::getrandom(bytes)
        .map_err(|e| StoreError::Crypto(format!("no random bytes from the kernel: {e}")))
}

impl VerifierStore {
    /// The store at [`crate::OFFLINE_DIR`], root's.
    pub fn system() -> VerifierStore {
        VerifierStore::at(crate::OFFLINE_DIR, Owner::Root)
    }

    /// A store in another folder (tests, tools).
    pub fn at(dir: impl Into<std::path::PathBuf>, owner: Owner) -> VerifierStore {
        VerifierStore {
            dir: PrivateDir::new(dir, owner),
            params: VerifierParams::default(),
            lock_wait: LOCK_WAIT,
        }
    }

    /// Waits at most `wait` (instead of [`LOCK_WAIT`]) for a record's lock.
    pub fn with_lock_wait(mut self, wait: Duration) -> VerifierStore {
        self.lock_wait = wait;
        self
    }

    /// The exclusive lock of the record named `record_name`.
    fn lock(&self, record_name: &str) -> Result<FileLock, StoreError> {
        self.dir.lock(&lock_name(record_name), self.lock_wait)
    }

    /// New verifiers made with `params` (existing ones keep theirs).
    pub fn with_params(mut self, params: VerifierParams) -> VerifierStore {
        self.params = params;
        self
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir.path
    }

    /// The host key; made (once, race-free: linked into place) when
    /// `create` and there is none.
    fn host_key(&self, create: bool) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        match self.dir.read(HOST_KEY_FILE) {
            Ok(key) => {
                let key = Zeroizing::new(key);
                if key.len() != HOST_KEY_BYTES {
                    return Err(StoreError::Damaged {
                        path: self.dir.file_path(HOST_KEY_FILE),
                        why: format!("not {HOST_KEY_BYTES} bytes"),
                    });
                }
                Ok(key)
            }
            Err(e) if create && e.is_not_found() => {
                let mut key = Zeroizing::new(vec![0u8; HOST_KEY_BYTES]);
                random(&mut key)?;
                match self.dir.write(HOST_KEY_FILE, &key, true) {
                    Ok(()) => Ok(key),
                    // Another login made it first: use that one.
                    Err(StoreError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        self.host_key(false)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn mac(
        &self,
        key: &[u8],
        params: &VerifierParams,
        salt: &[u8],
        password: &str,
    ) -> Result<Hmac<Sha256>, StoreError> {
        let mut stretched = Zeroizing::new([0u8; OUTPUT_BYTES]);
        params
            .hasher()?
            .hash_password_into(password.as_bytes(), salt, stretched.as_mut())
            .map_err(|e| StoreError::Crypto(format!("Argon2id: {e}")))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|e| StoreError::Crypto(format!("HMAC key: {e}")))?;
        mac.update(stretched.as_ref());
        Ok(mac)
    }

    fn read_record(&self, user: &str) -> Result<Option<Record>, StoreError> {
        let name = record_name(user);
        let bytes = match self.dir.read(&name) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let record = Record::decode(&bytes).map_err(|why| StoreError::Damaged {
            path: self.dir.file_path(&name),
            why,
        })?;
        if record.user != user {
            return Err(StoreError::Damaged {
                path: self.dir.file_path(&name),
                why: "holds another user's record".to_owned(),
            });
        }
        Ok(Some(record))
    }

    fn write_record(&self, record: &Record) -> Result<(), StoreError> {
        self.dir.write(
            &record_name(&record.user),
            record.encode().as_bytes(),
            false,
        )
    }

    /// After an online login (or password change) with `password`: a new
    /// verifier, dated `now`, failure counter cleared.
    pub fn store(&self, user: &str, password: &str, now: u64) -> Result<(), StoreError> {
        if user.is_empty() || user.chars().any(|c| c.is_control()) {
            return Err(StoreError::Crypto(
                "user name unfit for a record".to_owned(),
            ));
        }
        let key = self.host_key(true)?;
        let mut salt = vec![0u8; SALT_BYTES];
        random(&mut salt)?;
        let mac = self.mac(&key, &self.params, &salt, password)?;
        let record = Record {
            user: user.to_owned(),
            params: self.params,
            salt,
            mac: Zeroizing::new(mac.finalize().into_bytes().to_vec()),
            info: RecordInfo {
                online_at: now,
                failed: 0,
                failed_at: 0,
            },
        };
        // Argon2id ran before the lock: the lock is held for the write only.
        self.dir.ensure()?;
        let _lock = self.lock(&record_name(user))?;
        self.write_record(&record)
    }

    /// Checks `password` against `user`'s verifier under `policy` (the
    /// failure counter first, then the age, then the password) and counts
    /// a wrong one, holding the user's lock throughout; a lock another
    /// process holds longer than the lock wait makes it `Unusable` (busy).
    pub fn check(
        &self,
        user: &str,
        password: &str,
        now: u64,
        policy: &OfflinePolicy,
    ) -> OfflineCheck {
        match self.check_inner(user, password, now, policy) {
            Ok(outcome) => outcome,
            Err(e) => OfflineCheck::Unusable(e.to_string()),
        }
    }

    fn check_inner(
        &self,
        user: &str,
        password: &str,
        now: u64,
        policy: &OfflinePolicy,
    ) -> Result<OfflineCheck, StoreError> {
        let name = record_name(user);
        // No lock file for a user without a record: anyone can type any
        // name at a login prompt, and each would leave a file behind.
        if is_missing(&self.dir.file_path(&name)) {
            return Ok(OfflineCheck::NoVerifier);
        }
        let _lock = self.lock(&name)?;
        let Some(mut record) = self.read_record(user)? else {
            return Ok(OfflineCheck::NoVerifier);
        };
        let info = record.info;
        if policy.failed_attempts > 0 && info.failed >= policy.failed_attempts {
            let until = info.failed_at.saturating_add(policy.failed_delay.as_secs());
            if now < until {
                return Ok(OfflineCheck::LockedOut {
                    failed: info.failed,
                    retry_in_s: until - now,
                });
            }
        }
        if info.online_at > now.saturating_add(MAX_AHEAD_S) {
            return Ok(OfflineCheck::Unusable(format!(
                "{}: last online login dated in the future",
                self.dir.file_path(&record_name(user)).display()
            )));
        }
        let age_s = now.saturating_sub(info.online_at);
        if let Some(max) = policy.max_age {
            if age_s > max.as_secs() {
                return Ok(OfflineCheck::TooOld {
                    age_s,
                    max_s: max.as_secs(),
                });
            }
        }
        let key = self.host_key(false)?;
        let mac = self.mac(&key, &record.params, &record.salt, password)?;
        if mac.verify_slice(&record.mac).is_ok() {
            if record.info.failed != 0 {
                record.info.failed = 0;
                record.info.failed_at = 0;
                self.write_record(&record)?;
            }
            Ok(OfflineCheck::Accepted { age_s })
        } else {
            record.info.failed = record.info.failed.saturating_add(1);
            record.info.failed_at = now;
            self.write_record(&record)?;
            Ok(OfflineCheck::Wrong {
                failed: record.info.failed,
            })
        }
    }

    /// Removes `user`'s verifier (and its lock file); true when there was
    /// one. Without the lock (busy, untrusted folder) the record is still
    /// removed, since the server no longer vouches for it, and the lock's
    /// error returned.
    pub fn forget(&self, user: &str) -> Result<bool, StoreError> {
        let name = record_name(user);
        let path = self.dir.file_path(&name);
        if is_missing(&path) {
            return Ok(false);
        }
        let lock = self.lock(&name);
        let existed = crate::files::exists(&path);
        self.dir.remove(&name)?;
        lock?.remove()?;
        Ok(existed)
    }

    /// Age data of `user`'s record, if any.
    pub fn info(&self, user: &str) -> Result<Option<RecordInfo>, StoreError> {
        Ok(self.read_record(user)?.map(|r| r.info))
    }

    /// How many users have a verifier (0 when the folder does not exist).
    pub fn count(&self) -> Result<usize, StoreError> {
        if !crate::files::exists(&self.dir.path) {
            return Ok(0);
        }
        Ok(self.dir.list(RECORD_PREFIX)?.len())
    }

    /// Removes the verifiers of users for whom `keep` says false (and
    /// records that cannot be read as any user's); returns how many went.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<usize, StoreError> {
        if !crate::files::exists(&self.dir.path) {
            return Ok(0);
        }
        let kept = |name: &str| {
            self.dir
                .read(name)
                .ok()
                .and_then(|bytes| Record::decode(&Zeroizing::new(bytes)).ok())
                .filter(|r| record_name(&r.user) == name)
                .is_some_and(|r| keep(&r.user))
        };
        let mut removed = 0;
        let mut lock_error = None;
        for name in self.dir.list(RECORD_PREFIX)? {
            if kept(&name) {
                continue;
            }
            // Decided again under the lock: a login may have just replaced
            // a damaged record. Without the lock the record goes anyway.
            match self.lock(&name) {
                Ok(lock) => {
                    if kept(&name) {
                        continue;
                    }
                    self.dir.remove(&name)?;
                    lock.remove()?;
                }
                Err(e) => {
                    self.dir.remove(&name)?;
                    lock_error.get_or_insert(e);
                }
            }
            removed += 1;
        }
        // Lock files whose record is gone (a write that failed, a record
        // removed by hand).
        for lock_file in self.dir.list(LOCK_PREFIX)? {
            let Some(name) = lock_file.strip_prefix(LOCK_PREFIX) else {
                continue;
            };
            if !is_missing(&self.dir.file_path(name)) {
                continue;
            }
            match self.lock(name) {
                Ok(lock) if is_missing(&self.dir.file_path(name)) => lock.remove()?,
                Ok(_) => {}
                Err(e) => {
                    lock_error.get_or_insert(e);
                }
            }
        }
        match lock_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Cheap parameters: the tests check the logic, not the cost.
    const FAST: VerifierParams = VerifierParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn store() -> (tempfile::TempDir, VerifierStore) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            VerifierStore::at(dir.path().join("offline"), Owner::RootOrCaller).with_params(FAST);
        (dir, store)
    }

    const POLICY: OfflinePolicy = OfflinePolicy {
        max_age: Some(Duration::from_secs(7 * 86_400)),
        failed_attempts: 3,
        failed_delay: Duration::from_secs(300),
    };

    #[test]
    fn stores_and_checks_with_private_modes() {
        let (_tmp, s) = store();
        assert_eq!(
            s.check("alice", "pw", 1000, &POLICY),
            OfflineCheck::NoVerifier
        );
        s.store("alice", "alice-pw", 1000).unwrap();
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(s.dir()), 0o700);
        assert_eq!(mode(&s.dir().join("host.key")), 0o600);
        assert_eq!(mode(&s.dir().join(record_name("alice"))), 0o600);
        assert_eq!(
            s.check("alice", "alice-pw", 1060, &POLICY),
            OfflineCheck::Accepted { age_s: 60 }
        );
        assert_eq!(
            s.check("alice", "wrong", 1060, &POLICY),
            OfflineCheck::Wrong { failed: 1 }
        );
        assert_eq!(
            s.check("bob", "alice-pw", 1060, &POLICY),
            OfflineCheck::NoVerifier
        );
        assert_eq!(s.count().unwrap(), 1);
        // No secret in the record in clear, and none in Debug output.
        let text = std::fs::read_to_string(s.dir().join(record_name("alice"))).unwrap();
        assert!(!text.contains("alice-pw"), "{text}");
        let record = s.read_record("alice").unwrap().unwrap();
        let debug = format!("{record:?}");
        assert!(
            !debug.contains(&hex(&record.mac)) && !debug.contains("salt"),
            "{debug}"
        );
    }

    #[test]
    fn host_key_makes_a_copy_of_the_records_useless() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        // A new host key (another host, or a copy without the key): the
        // same record no longer verifies the right password.
        std::fs::remove_file(s.dir().join("host.key")).unwrap();
        s.host_key(true).unwrap();
        assert_eq!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Wrong { failed: 1 }
        );
    }

    #[test]
    fn counter_is_checked_before_the_password_and_cleared_by_success() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        for n in 1..=3 {
            assert_eq!(
                s.check("alice", "wrong", 1000 + u64::from(n), &POLICY),
                OfflineCheck::Wrong { failed: n }
            );
        }
        assert_eq!(
            s.check("alice", "alice-pw", 1103, &POLICY),
            OfflineCheck::LockedOut {
                failed: 3,
                retry_in_s: 200
            }
        );
        // Once the delay has passed, the right password counts again and
        // clears the counter.
        assert_eq!(
            s.check("alice", "alice-pw", 1303, &POLICY),
            OfflineCheck::Accepted { age_s: 303 }
        );
        assert_eq!(s.info("alice").unwrap().unwrap().failed, 0);
        // An online login starts over too.
        for n in 1..=3u32 {
            s.check("alice", "wrong", 1400 + u64::from(n), &POLICY);
        }
        s.store("alice", "alice-pw", 1500).unwrap();
        assert_eq!(
            s.check("alice", "alice-pw", 1501, &POLICY),
            OfflineCheck::Accepted { age_s: 1 }
        );
    }

    #[test]
    fn too_old_and_no_limit() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        let week = 7 * 86_400;
        assert_eq!(
            s.check("alice", "alice-pw", 1000 + week + 1, &POLICY),
            OfflineCheck::TooOld {
                age_s: week + 1,
                max_s: week
            }
        );
        let unlimited = OfflinePolicy {
            max_age: None,
            ..POLICY
        };
        assert_eq!(
            s.check("alice", "alice-pw", 1000 + week * 10, &unlimited),
            OfflineCheck::Accepted { age_s: week * 10 }
        );
        assert!(matches!(
            s.check("alice", "alice-pw", 0, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("future")
        ));
    }

    #[test]
    fn forget_retain_count() {
        let (_tmp, s) = store();
        assert_eq!(s.count().unwrap(), 0);
        for user in ["alice", "bob", "carol"] {
            s.store(user, "pw", 1000).unwrap();
        }
        std::fs::write(s.dir().join("v-junk"), "junk").unwrap();
        assert!(s.forget("bob").unwrap());
        assert!(!s.forget("bob").unwrap());
        assert_eq!(s.retain(|u| u == "alice").unwrap(), 2);
        assert_eq!(s.count().unwrap(), 1);
        assert!(s.info("alice").unwrap().is_some());
        assert!(s.info("carol").unwrap().is_none());
    }

    #[test]
    fn untrusted_files_and_folders_are_refused() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        let record = s.dir().join(record_name("alice"));
        let chmod = |p: &std::path::Path, m| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod(&record, 0o666);
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("writable by group or others")
        ));
        chmod(&record, 0o640);
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("open to group or others")
        ));
        chmod(&record, 0o600);
        chmod(s.dir(), 0o750);
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("folder open to group or others")
        ));
        assert!(s.store("bob", "pw", 1000).is_err());
        chmod(s.dir(), 0o700);
        // A planted link instead of the record.
        let moved = s.dir().join("elsewhere");
        std::fs::rename(&record, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &record).unwrap();
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("symbolic link")
        ));
        // A record copied under another user's name.
        std::fs::remove_file(&record).unwrap();
        std::fs::rename(&moved, s.dir().join(record_name("mallory"))).unwrap();
        assert!(matches!(
            s.check("mallory", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("another user")
        ));
        // A record asking for absurd work is damaged, not obeyed.
        s.store("alice", "alice-pw", 1000).unwrap();
        let text = std::fs::read_to_string(&record)
            .unwrap()
            .replace("argon2id=m64,t1,p1", "argon2id=m99999999,t1,p1");
        std::fs::write(&record, text).unwrap();
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("argon2id")
        ));
    }

    /// Parameters that make a check last about a millisecond: wide enough
    /// a window between reading and writing the record that concurrent
    /// checks without the lock overlap in it.
    const RACY: VerifierParams = VerifierParams {
        m_kib: 1024,
        t: 1,
        p: 1,
    };

    /// `threads` wrong-password checks of alice, started together.
    fn concurrent_wrong_checks(
        s: &VerifierStore,
        threads: usize,
        policy: &OfflinePolicy,
    ) -> Vec<OfflineCheck> {
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        s.check("alice", "wrong", 1000, policy)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn concurrent_wrong_passwords_meet_the_exact_limit() {
        let (_tmp, s) = store();
        // The checks take turns: on a loaded host the last may wait long.
        let s = s.with_params(RACY).with_lock_wait(Duration::from_secs(30));
        s.store("alice", "alice-pw", 1000).unwrap();
        let outcomes = concurrent_wrong_checks(&s, 8, &POLICY);
        let mut wrong: Vec<u32> = outcomes
            .iter()
            .filter_map(|o| match o {
                OfflineCheck::Wrong { failed } => Some(*failed),
                _ => None,
            })
            .collect();
        wrong.sort_unstable();
        let locked_out = outcomes
            .iter()
            .filter(|o| matches!(o, OfflineCheck::LockedOut { failed: 3, .. }))
            .count();
        assert_eq!(wrong, [1, 2, 3], "{outcomes:?}");
        assert_eq!(locked_out, 5, "{outcomes:?}");
        assert_eq!(s.info("alice").unwrap().unwrap().failed, 3);
    }

    #[test]
    fn concurrent_wrong_passwords_are_all_counted_without_a_limit() {
        let (_tmp, s) = store();
        // The checks take turns: on a loaded host the last may wait long.
        let s = s.with_params(RACY).with_lock_wait(Duration::from_secs(30));
        s.store("alice", "alice-pw", 1000).unwrap();
        let no_limit = OfflinePolicy {
            failed_attempts: 0,
            ..POLICY
        };
        let outcomes = concurrent_wrong_checks(&s, 8, &no_limit);
        let mut wrong: Vec<u32> = outcomes
            .iter()
            .filter_map(|o| match o {
                OfflineCheck::Wrong { failed } => Some(*failed),
                _ => None,
            })
            .collect();
        wrong.sort_unstable();
        assert_eq!(wrong, (1..=8).collect::<Vec<_>>(), "{outcomes:?}");
        assert_eq!(s.info("alice").unwrap().unwrap().failed, 8);
    }

    #[test]
    fn a_held_lock_makes_the_store_busy_after_the_wait() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        let wait = Duration::from_millis(100);
        let s = s.with_lock_wait(wait);
        let lock_path = s.dir().join(lock_name(&record_name("alice")));
        // Another process's hold: a lock on a descriptor of its own.
        let held = s
            .dir
            .lock(&lock_name(&record_name("alice")), Duration::ZERO);
        let held = held.unwrap();
        let started = std::time::Instant::now();
        let outcome = s.check("alice", "wrong", 1000, &POLICY);
        let waited = started.elapsed();
        assert!(
            matches!(&outcome, OfflineCheck::Unusable(why)
                if why.contains("busy") && why.contains(&lock_path.display().to_string())),
            "{outcome:?}"
        );
        assert!(waited >= wait && waited < LOCK_WAIT, "{waited:?}");
        assert!(matches!(
            s.store("alice", "new-pw", 1001),
            Err(StoreError::Busy { .. })
        ));
        // Nothing was written while busy.
        assert_eq!(s.info("alice").unwrap().unwrap().failed, 0);
        assert_eq!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(format!(
                "{}: busy: another process held the lock for more than 100 ms",
                lock_path.display()
            ))
        );
        // Forgetting is not held up: the record goes, the error is told.
        assert!(matches!(s.forget("alice"), Err(StoreError::Busy { .. })));
        assert!(s.info("alice").unwrap().is_none());
        drop(held);
        s.store("alice", "alice-pw", 1000).unwrap();
        assert_eq!(
            s.check("alice", "wrong", 1000, &POLICY),
            OfflineCheck::Wrong { failed: 1 }
        );
    }

    #[test]
    fn a_lock_file_replaced_while_waiting_is_locked_again() {
        let (_tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        let name = lock_name(&record_name("alice"));
        let first = s.dir.lock(&name, Duration::ZERO).unwrap();
        let s = s.with_lock_wait(Duration::from_millis(600));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| s.check("alice", "wrong", 1000, &POLICY));
            std::thread::sleep(Duration::from_millis(150));
            // The path now names another file, locked by someone else;
            // then the first file is released: the waiter gets a lock on
            // a file that is no longer the lock, and must not go on.
            let second = s.dir.lock(".other", Duration::ZERO).unwrap();
            std::fs::rename(s.dir().join(".other"), s.dir().join(&name)).unwrap();
            drop(first);
            let outcome = waiter.join().unwrap();
            assert!(
                matches!(&outcome, OfflineCheck::Unusable(why) if why.contains("busy")),
                "{outcome:?}"
            );
            drop(second);
        });
        assert_eq!(s.info("alice").unwrap().unwrap().failed, 0);
    }

    #[test]
    fn lock_files_are_private_and_never_records() {
        let (_tmp, s) = store();
        // A user without a record gets no lock file.
        assert_eq!(
            s.check("nobody", "pw", 1000, &POLICY),
            OfflineCheck::NoVerifier
        );
        assert!(!s.forget("nobody").unwrap());
        s.store("alice", "alice-pw", 1000).unwrap();
        s.store("bob", "bob-pw", 1000).unwrap();
        s.check("alice", "wrong", 1000, &POLICY);
        let alice_lock = s.dir().join(lock_name(&record_name("alice")));
        let bob_lock = s.dir().join(lock_name(&record_name("bob")));
        let meta = std::fs::symlink_metadata(&alice_lock).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(meta.len(), 0);
        let names: Vec<String> = std::fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains(&record_name("nobody")) || n.contains(".tmp.")),
            "{names:?}"
        );
        assert_eq!(s.count().unwrap(), 2);
        assert_eq!(s.retain(|_| true).unwrap(), 0);
        assert_eq!(s.count().unwrap(), 2);
        assert!(alice_lock.exists() && bob_lock.exists());
        // The lock goes with its record.
        assert!(s.forget("alice").unwrap());
        assert!(!alice_lock.exists());
        assert_eq!(s.retain(|u| u != "bob").unwrap(), 1);
        assert!(!bob_lock.exists());
        // One left behind (its record removed by hand) is swept by retain.
        s.store("carol", "carol-pw", 1000).unwrap();
        std::fs::remove_file(s.dir().join(record_name("carol"))).unwrap();
        let carol_lock = s.dir().join(lock_name(&record_name("carol")));
        assert!(carol_lock.exists());
        assert_eq!(s.retain(|_| true).unwrap(), 0);
        assert!(!carol_lock.exists());
        assert_eq!(s.count().unwrap(), 0);
    }

    #[test]
    fn a_planted_link_as_lock_file_is_refused() {
        let (tmp, s) = store();
        s.store("alice", "alice-pw", 1000).unwrap();
        let lock_path = s.dir().join(lock_name(&record_name("alice")));
        std::fs::remove_file(&lock_path).unwrap();
        let target = tmp.path().join("target");
        std::os::unix::fs::symlink(&target, &lock_path).unwrap();
        assert!(matches!(
            s.check("alice", "alice-pw", 1000, &POLICY),
            OfflineCheck::Unusable(why) if why.contains("symbolic link")
        ));
        assert!(!target.exists());
    }
}
