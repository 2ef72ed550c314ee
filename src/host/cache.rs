//! The response cache: one file per key in `packserve.cache.dir`, shared by every packserve
//! process of the host.
//!
//! Files of a key `<k>` (40 hex digits):
//! - `<k>.entry`: a complete response. A 128-byte header (`PSCACHE2`, the payload length as a
//!   big-endian u64, the creation time in seconds, the key in hex, the kernel's boot id), then
//!   the payload. An entry written during another boot is not served: it is not fsynced (that
//!   would cost the writer as much CPU as the copy), so after a crash its bytes may not be those
//!   that were written. Without a boot id, entries are fsynced before they are renamed.
//! - `<k>.part`: the response being written. Its writer holds an exclusive `flock` on it for as
//!   long as it writes, and sets the header's length only once the payload is whole; then it
//!   renames the file to `<k>.entry`. A length of 0 means "not finished".
//! - `<k>.lock`: who writes `<k>`: the process holding an exclusive `flock` on it.
//! - `<k>.seen`: one byte per request seen, for `packserve.cache.minOccurrences`.
//!
//! A request that finds the lock taken follows the writer: it reads `<k>.part` as it grows and
//! waits at its end (backpressure). When the part is no longer locked and its length is still 0,
//! the writer died or gave up: nothing there is taken for a whole response.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sys;
use super::CacheConfig;

const MAGIC: &[u8; 8] = b"PSCACHE2";
/// Header bytes before the payload.
pub const HEADER: u64 = 128;
/// Bytes read or written per copy when serving an entry.
const CHUNK: usize = 1 << 20;

/// What a request does with the cache.
pub enum Lookup {
    /// A complete entry: serve it.
    Hit(Hit),
    /// Another process is writing it: follow that writer.
    Follow(Follow),
    /// This request writes it while it streams its own response.
    Write(Box<Writer>),
    /// Not cached (cache off, response not seen often enough, or a problem, in the second
    /// value of [`lookup`]).
    Uncached,
}

/// The paths of one key.
#[derive(Debug, Clone)]
struct Paths {
    dir: PathBuf,
    key: String,
    entry: PathBuf,
    part: PathBuf,
    lock: PathBuf,
    seen: PathBuf,
}

impl Paths {
    fn new(dir: &Path, key: &str) -> Paths {
        Paths {
            dir: dir.to_owned(),
            key: key.to_owned(),
            entry: dir.join(format!("{key}.entry")),
            part: dir.join(format!("{key}.part")),
            lock: dir.join(format!("{key}.lock")),
            seen: dir.join(format!("{key}.seen")),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Looks `key` up; the message, if any, is a problem for the log (the request is then served
/// without the cache, or rewrites a damaged entry).
pub fn lookup(cfg: &CacheConfig, key: &str) -> (Lookup, Option<String>) {
    let Some(dir) = &cfg.dir else { return (Lookup::Uncached, None) };
    let mut problem = None;
    match lookup_in(cfg, &Paths::new(dir, key), &mut problem) {
        Ok(l) => (l, problem),
        Err(e) => (Lookup::Uncached, Some(format!("cache {}: {}", dir.display(), crate::strerror(&e)))),
    }
}

fn lookup_in(cfg: &CacheConfig, paths: &Paths, problem: &mut Option<String>) -> io::Result<Lookup> {
    if let Some(hit) = open_entry(cfg, paths, problem) {
        return Ok(Lookup::Hit(hit));
    }
    if cfg.min_occurrences > 1 && occurrences(paths)? < cfg.min_occurrences {
        return Ok(Lookup::Uncached);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lock = match sys::open_lock_file(&paths.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&paths.dir)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if sys::try_lock(&lock, true)? {
            // An eviction may have removed the lock file between our open and our lock.
            match fs::metadata(&paths.lock) {
                Ok(m) if sys::same_file(&m, &lock.metadata()?) => {}
                _ => continue,
            }
            // A writer may have finished between our first look and our lock.
            if let Some(hit) = open_entry(cfg, paths, problem) {
                return Ok(Lookup::Hit(hit));
            }
            return Ok(Lookup::Write(Box::new(Writer::start(cfg, paths.clone(), lock)?)));
        }
        drop(lock);
        match File::open(&paths.part) {
            Ok(f) => {
                if let Some(follow) = Follow::new(f)? {
                    return Ok(Lookup::Follow(follow));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(hit) = open_entry(cfg, paths, problem) {
                    return Ok(Lookup::Hit(hit));
                }
            }
            Err(e) => return Err(e),
        }
        // The writer is between its lock and its part file, or a stale part is still there.
        if Instant::now() >= deadline {
            problem.get_or_insert_with(|| "cache: no writer to follow appeared in 5s".into());
            return Ok(Lookup::Uncached);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Counts this request among those seen for the key; the count.
fn occurrences(paths: &Paths) -> io::Result<u64> {
    let open = || OpenOptions::new().append(true).create(true).open(&paths.seen);
    let mut f = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(&paths.dir)?;
            open()?
        }
        other => other?,
    };
    f.write_all(b".")?;
    Ok(f.metadata()?.len())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), if the kernel tells it.
fn boot_id() -> Option<[u8; 36]> {
    static ID: std::sync::OnceLock<Option<[u8; 36]>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let s = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        s.trim().as_bytes().try_into().ok()
    })
}

/// Reads a header: the payload length (0: not finished), the creation time, and the key.
fn read_header(f: &File) -> io::Result<(u64, u64, [u8; 40])> {
    let mut h = [0u8; HEADER as usize];
    f.read_exact_at(&mut h, 0)?;
    if &h[..8] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad magic"));
    }
    let num = |r: std::ops::Range<usize>| u64::from_be_bytes(h[r].try_into().unwrap_or([0; 8]));
    let mut key = [0u8; 40];
    key.copy_from_slice(&h[24..64]);
    // Written during another boot: as if damaged.
    if boot_id().is_some_and(|b| h[64..100] != b) && num(8..16) != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "written before the last boot"));
    }
    Ok((num(8..16), num(16..24), key))
}

fn header(len: u64, created: u64, key: &str) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&len.to_be_bytes());
    h[16..24].copy_from_slice(&created.to_be_bytes());
    let k = key.as_bytes();
    let n = k.len().min(40);
    h[24..24 + n].copy_from_slice(&k[..n]);
    if let Some(b) = boot_id() {
        h[64..100].copy_from_slice(&b);
    }
    h
}

/// The entry of the key, when there is a whole, fresh one. A damaged one is removed and
/// reported; an expired one is removed.
fn open_entry(cfg: &CacheConfig, paths: &Paths, problem: &mut Option<String>) -> Option<Hit> {
    let f = match File::open(&paths.entry) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            problem.get_or_insert_with(|| {
                format!("cache entry {}: {}", paths.entry.display(), crate::strerror(&e))
            });
            return None;
        }
    };
    let checked = (|| {
        let size = f.metadata()?.len();
        let (len, created, key) = read_header(&f)?;
        if len == 0 || size != HEADER + len || key.as_slice() != paths.key.as_bytes() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("size {size}, header says {len}"),
            ));
        }
        Ok((len, created))
    })();
    match checked {
        Ok((len, created)) if now_secs().saturating_sub(created) <= cfg.max_age.as_secs() => {
            Some(Hit { file: f, len })
        }
        Ok(_) => {
            let _ = fs::remove_file(&paths.entry);
            None
        }
        Err(e) => {
            problem.get_or_insert_with(|| {
                format!("cache entry {} damaged ({e}); removed", paths.entry.display())
            });
            let _ = fs::remove_file(&paths.entry);
            None
        }
    }
}

/// A complete entry.
pub struct Hit {
    file: File,
    len: u64,
}

impl Hit {
    /// The payload's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload is empty (never, for a stored entry).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sends the payload to the descriptor `fd` with `sendfile` (no copy through this
    /// process); the bytes sent. `Ok(None)` when the kernel cannot (nothing was sent: copy).
    pub fn send_to_fd(&self, fd: i32) -> io::Result<Option<u64>> {
        let mut offset = HEADER as i64;
        let end = (HEADER + self.len) as i64;
        while offset < end {
            let want = ((end - offset) as usize).min(1 << 30);
            match sys::sendfile(fd, &self.file, &mut offset, want) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "entry shorter than its header"))
                }
                Ok(_) => {}
                Err(e) if offset == HEADER as i64 && matches!(e.raw_os_error(), Some(22 | 38)) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(self.len))
    }

    /// Copies the payload to `out` in large chunks; the bytes copied. An entry that turns out
    /// shorter than its header says is an error before anything is lost: the caller checked
    /// the size, and entries are never written in place.
    pub fn copy_to(&self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
        let mut buf = vec![0u8; CHUNK.min(self.len as usize).max(1)];
        let mut pos = 0u64;
        while pos < self.len {
            let want = ((self.len - pos) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..want], HEADER + pos)?;
            out(&buf[..want])?;
            pos += want as u64;
        }
        Ok(pos)
    }
}

/// Writes an entry while the response streams: a tee.
pub struct Writer {
    /// The part file, locked; `None` once writing failed.
    file: Option<File>,
    _lock: File,
    paths: Paths,
    cfg: CacheConfig,
    created: u64,
    written: u64,
    problem: Option<String>,
}

/// Ignores SIGXFSZ, so that a file-size limit fails a write (EFBIG) instead of killing the
/// process that serves the client.
fn ignore_sigxfsz() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGXFSZ: i32 = 25;
    const SIG_IGN: usize = 1;
    // SAFETY: installs the ignore disposition; no handler code is involved.
    unsafe { signal(SIGXFSZ, SIG_IGN) };
}

impl Writer {
    fn start(cfg: &CacheConfig, paths: Paths, lock: File) -> io::Result<Writer> {
        ignore_sigxfsz();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tmp = paths.dir.join(format!("{}.{}.{nanos}.tmp", paths.key, std::process::id()));
        let mut file = OpenOptions::new().read(true).write(true).create_new(true).open(&tmp)?;
        let created = now_secs();
        let res = (|| {
            if !sys::try_lock(&file, true)? {
                return Err(io::Error::other("new part file already locked"));
            }
            file.write_all(&header(0, created, &paths.key))?;
            // A part left by a writer that died; nobody can be writing it (we hold the lock).
            let _ = fs::remove_file(&paths.part);
            fs::rename(&tmp, &paths.part)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Writer {
            file: Some(file),
            _lock: lock,
            paths,
            cfg: cfg.clone(),
            created,
            written: 0,
            problem: None,
        })
    }

    /// Appends response bytes. A failure (full disk, removed directory, the entry outgrowing
    /// `maxSize`) abandons the entry; the response itself goes on.
    pub fn write(&mut self, data: &[u8]) {
        let Some(f) = &mut self.file else { return };
        if self.written + data.len() as u64 + HEADER > self.cfg.max_size {
            self.fail(format!("response larger than packserve.cache.maxSize ({})", self.cfg.max_size));
            return;
        }
        match f.write_all(data) {
            Ok(()) => self.written += data.len() as u64,
            Err(e) => self.fail(format!("writing {}: {}", self.paths.part.display(), crate::strerror(&e))),
        }
    }

    fn fail(&mut self, msg: String) {
        self.problem.get_or_insert(msg);
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.paths.part);
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The response is whole: marks the entry complete (followers may finish now), makes it
    /// durable and visible, then evicts what is too old or too much. The problem, if any.
    pub fn commit(mut self) -> Option<String> {
        let Some(f) = self.file.take() else { return self.problem.take() };
        let res = (|| {
            if self.written == 0 {
                return Err(io::Error::other("empty response"));
            }
            f.write_all_at(&header(self.written, self.created, &self.paths.key), 0)?;
            if boot_id().is_none() {
                f.sync_data()?;
            }
            fs::rename(&self.paths.part, &self.paths.entry)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&self.paths.part);
            self.problem = Some(format!("storing {}: {}", self.paths.entry.display(), crate::strerror(&e)));
        }
        drop(f);
        evict(&self.cfg, &self.paths.dir);
        self.problem.take()
    }

    /// Gives up the entry (the response failed): nothing of it stays.
    pub fn abandon(mut self) {
        self.fail(String::new());
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.paths.part);
        }
    }
}

/// Following a writer.
pub struct Follow {
    file: File,
}

/// Why following ended early.
#[derive(Debug)]
pub enum FollowError {
    /// The writer died or gave up; `sent` bytes had already been passed on.
    Abandoned {
        /// Bytes passed to the output before.
        sent: u64,
    },
    /// Reading the part or writing the output failed.
    Io(io::Error),
}

impl From<io::Error> for FollowError {
    fn from(e: io::Error) -> Self {
        FollowError::Io(e)
    }
}

impl Follow {
    /// `None` when `f` is a stale part (no writer holds it and it is not finished).
    fn new(file: File) -> io::Result<Option<Follow>> {
        let (len, _, _) = match read_header(&file) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::InvalidData => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        if len == 0 && sys::try_lock(&file, false)? {
            return Ok(None);
        }
        Ok(Some(Follow { file }))
    }

    /// Passes the payload to `out` as it is written, waiting at its end for more. `whole`
    /// tells how many leading bytes of what is read so far form whole units to pass on (the
    /// rest waits for the bytes that complete it), so that an abandoned writer leaves the
    /// output at a boundary. The bytes passed on.
    pub fn copy_to(
        &self,
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
        whole: &dyn Fn(&[u8]) -> usize,
    ) -> Result<u64, FollowError> {
        let mut buf = vec![0u8; CHUNK];
        let mut have = 0usize;
        let mut pos = HEADER;
        let mut sent = 0u64;
        let mut end: Option<u64> = None;
        let mut wait = Duration::from_millis(1);
        loop {
            if end == Some(pos) {
                if have > 0 {
                    out(&buf[..have])?;
                }
                return Ok(sent + have as u64);
            }
            let room = match end {
                Some(e) => (e.saturating_sub(pos) as usize).min(buf.len() - have),
                None => buf.len() - have,
            };
            let n = self.file.read_at(&mut buf[have..have + room], pos)?;
            if n > 0 {
                pos += n as u64;
                have += n;
                if end == Some(pos) {
                    continue;
                }
                let k = if have == buf.len() { have } else { whole(&buf[..have]).min(have) };
                if k > 0 {
                    out(&buf[..k])?;
                }
                sent += k as u64;
                buf.copy_within(k..have, 0);
                have -= k;
                wait = Duration::from_millis(1);
                continue;
            }
            if end.is_some() {
                // Shorter than its header says: not whole.
                return Err(FollowError::Abandoned { sent });
            }
            let (len, _, _) = read_header(&self.file)?;
            if len != 0 {
                end = Some(HEADER + len);
                continue;
            }
            if sys::try_lock(&self.file, false)? {
                // The writer is gone; it may have finished just before.
                let (len, _, _) = read_header(&self.file)?;
                if len == 0 {
                    return Err(FollowError::Abandoned { sent });
                }
                end = Some(HEADER + len);
                continue;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }
}

/// Removes entries older than `maxAge`, then the oldest until the rest fit in `maxSize`;
/// and what dead writers left (unlocked parts and temporary files, old counters and locks).
pub fn evict(cfg: &CacheConfig, dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let age =
        |m: &fs::Metadata| m.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let mut entries = Vec::new();
    for de in rd.flatten() {
        let path = de.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let Ok(meta) = de.metadata() else { continue };
        let ext = name.rsplit('.').next().unwrap_or("");
        match ext {
            "entry" => {
                if age(&meta) > cfg.max_age {
                    let _ = fs::remove_file(&path);
                } else {
                    entries.push((meta.modified().unwrap_or(UNIX_EPOCH), meta.len(), path));
                }
            }
            "part" | "tmp" => {
                // Unlocked: its writer is gone.
                if let Ok(f) = File::open(&path) {
                    if age(&meta) > Duration::from_secs(10) && sys::try_lock(&f, true).unwrap_or(false) {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            "seen" if age(&meta) > cfg.max_age => {
                let _ = fs::remove_file(&path);
            }
            "lock" if age(&meta) > cfg.max_age => {
                if let Ok(f) = OpenOptions::new().read(true).write(true).open(&path) {
                    if sys::try_lock(&f, true).unwrap_or(false) {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            _ => {}
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut total = 0u64;
    for (_, len, path) in entries {
        total += len;
        if total > cfg.max_size {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> CacheConfig {
        CacheConfig { dir: Some(dir.to_owned()), ..Default::default() }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("packserve-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn collect(hit: &Hit) -> Vec<u8> {
        let mut v = Vec::new();
        hit.copy_to(&mut |d| {
            v.extend_from_slice(d);
            Ok(())
        })
        .unwrap();
        v
    }

    /// Follows `f` in a thread, collecting what it passes on.
    fn follow_in_thread(
        f: Follow,
        whole: fn(&[u8]) -> usize,
    ) -> std::thread::JoinHandle<(Result<u64, FollowError>, Vec<u8>)> {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let r = f.copy_to(
                &mut |d| {
                    got.extend_from_slice(d);
                    Ok(())
                },
                &whole,
            );
            (r, got)
        })
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn write_then_hit() {
        let d = tmpdir("hit");
        let c = cfg(&d);
        let (Lookup::Write(mut w), None) = lookup(&c, KEY) else { panic!("expected a writer") };
        w.write(b"hello ");
        w.write(b"world");
        assert_eq!(w.commit(), None);
        let (Lookup::Hit(h), None) = lookup(&c, KEY) else { panic!("expected a hit") };
        assert_eq!(collect(&h), b"hello world");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn abandoned_writer_leaves_nothing_and_follower_errs() {
        let d = tmpdir("abandon");
        let c = cfg(&d);
        let (Lookup::Write(mut w), _) = lookup(&c, KEY) else { panic!("expected a writer") };
        w.write(b"0009data");
        let (Lookup::Follow(f), _) = lookup(&c, KEY) else { panic!("expected to follow") };
        let t = follow_in_thread(f, |b| b.len());
        std::thread::sleep(Duration::from_millis(50));
        w.abandon();
        let (r, got) = t.join().unwrap();
        assert!(matches!(r, Err(FollowError::Abandoned { sent: 8 })), "{r:?}");
        assert_eq!(got, b"0009data");
        assert!(matches!(lookup(&c, KEY).0, Lookup::Write(_)));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn follower_gets_whole_response() {
        let d = tmpdir("follow");
        let c = cfg(&d);
        let (Lookup::Write(mut w), _) = lookup(&c, KEY) else { panic!("expected a writer") };
        w.write(b"abc");
        let (Lookup::Follow(f), _) = lookup(&c, KEY) else { panic!("expected to follow") };
        let t = follow_in_thread(f, |_| 0);
        std::thread::sleep(Duration::from_millis(30));
        w.write(b"def");
        assert_eq!(w.commit(), None);
        let (r, got) = t.join().unwrap();
        assert_eq!(r.unwrap(), 6);
        assert_eq!(got, b"abcdef");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn damaged_entry_is_replaced() {
        let d = tmpdir("damaged");
        let c = cfg(&d);
        let (Lookup::Write(mut w), _) = lookup(&c, KEY) else { panic!() };
        w.write(b"abcdef");
        w.commit();
        let p = d.join(format!("{KEY}.entry"));
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(HEADER + 3).unwrap();
        let (l, problem) = lookup(&c, KEY);
        assert!(matches!(l, Lookup::Write(_)));
        assert!(problem.unwrap().contains("damaged"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn eviction_by_size() {
        let d = tmpdir("evict");
        let mut c = cfg(&d);
        c.max_size = 200;
        for k in ["a", "b", "c"] {
            let key = k.repeat(40);
            let (Lookup::Write(mut w), _) = lookup(&c, &key) else { panic!() };
            w.write(&[b'x'; 60]);
            w.commit();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Each entry is 124 bytes: only the newest fits.
        assert!(matches!(lookup(&c, &"c".repeat(40)).0, Lookup::Hit(_)));
        assert!(!matches!(lookup(&c, &"a".repeat(40)).0, Lookup::Hit(_)));
        let _ = fs::remove_dir_all(&d);
    }
}
