//! State shared between the packserve processes of one host, through the file system: the
//! response cache ([`cache`]), the admission slots ([`slots`]) and the reachable-set cache
//! ([`reach`]).
//!
//! packserve is started once per request, so no process sees the others; what they share lives
//! in directories the administrator configures, guarded by `flock` locks that the kernel drops
//! when a process dies, whatever kills it. Entries become visible only when complete (written,
//! then renamed into place). Any failure here falls back to serving without it: the caller gets
//! an "uncached"/"admitted" answer and a message for the log, never an error for the client.
//!
//! Knows files, locks and keys; knows nothing of pkt-lines or of what the bytes mean.

pub mod cache;
pub mod reach;
pub mod slots;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

/// `packserve.cache.*`: the shared response cache (off unless `dir` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `packserve.cache.dir`.
    pub dir: Option<PathBuf>,
    /// `packserve.cache.maxAge` (seconds; default 300): older entries are not served.
    pub max_age: Duration,
    /// `packserve.cache.maxSize` (bytes; default 1 GiB): total size of the entries kept.
    pub max_size: u64,
    /// `packserve.cache.minOccurrences` (default 1): a response is stored the n-th time its
    /// key is seen within `maxAge`.
    pub min_occurrences: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { dir: None, max_age: Duration::from_secs(300), max_size: 1 << 30, min_occurrences: 1 }
    }
}

/// `packserve.limit.*`: admission control (off unless `dir` and a limit are set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// `packserve.limit.dir`: where the slot files are.
    pub dir: Option<PathBuf>,
    /// `packserve.limit.perRepo`: pack-sending requests at once per repository (0: no limit).
    pub per_repo: u64,
    /// `packserve.limit.perHost`: pack-sending requests at once on the host (0: no limit).
    pub per_host: u64,
    /// `packserve.limit.queueTimeout` (seconds; default 60): how long a request waits for a
    /// slot before it is refused.
    pub queue_timeout: Duration,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig { dir: None, per_repo: 0, per_host: 0, queue_timeout: Duration::from_secs(60) }
    }
}

impl LimitConfig {
    /// Whether admission control is on.
    pub fn enabled(&self) -> bool {
        self.dir.is_some() && (self.per_repo > 0 || self.per_host > 0)
    }
}

/// A hash of byte strings, in hex: the cache key, and the slot names of a repository.
pub struct KeyHasher {
    hasher: gix::hash::Hasher,
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher { hasher: gix::hash::hasher(gix::hash::Kind::Sha1) }
    }
}

impl KeyHasher {
    /// Adds one labelled field (length-prefixed, so that fields cannot run into each other).
    pub fn field(&mut self, label: &str, value: &[u8]) {
        self.hasher.update(label.as_bytes());
        self.hasher.update(&(value.len() as u64).to_be_bytes());
        self.hasher.update(value);
    }

    /// The hex digest (`None` only if the hasher reports a collision attack).
    pub fn finish(self) -> Option<String> {
        self.hasher.try_finalize().ok().map(|id| id.to_hex().to_string())
    }
}
