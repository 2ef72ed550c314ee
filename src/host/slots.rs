//! Admission slots: at most `packserve.limit.perRepo` pack-sending requests per repository and
//! `packserve.limit.perHost` on the host run at once. A slot is a file in
//! `packserve.limit.dir` (`host.<i>.slot`, `repo-<hash>.<i>.slot`) that its holder keeps
//! `flock`ed; the kernel frees it when the process ends, however it ends. A request over the
//! limit polls for a free slot until `packserve.limit.queueTimeout`, then is refused.
//!
//! Waiting is not first-come first-served: whoever polls first after a slot frees takes it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::sys;
use super::LimitConfig;

/// The slots a request holds until it is dropped.
#[derive(Debug)]
pub struct Admitted {
    _slots: Vec<File>,
}

/// What admission decided.
#[derive(Debug)]
pub enum Admission {
    /// Run now (after waiting `waited`); the slots are freed when this is dropped.
    Admitted(Admitted, Duration),
    /// Over the limit for longer than the queue timeout. The message names the limit.
    Busy(Duration, String),
    /// No limit applies (off, or a problem with the slot directory, logged).
    Unlimited(Option<String>),
}

/// Takes a slot for `repo_id` (a stable name of the repository) and one on the host, waiting
/// up to the queue timeout.
pub fn admit(cfg: &LimitConfig, repo_id: &str) -> Admission {
    let Some(dir) = cfg.dir.as_deref().filter(|_| cfg.enabled()) else { return Admission::Unlimited(None) };
    match admit_in(cfg, dir, repo_id) {
        Ok(a) => a,
        Err(e) => Admission::Unlimited(Some(format!("limit {}: {}", dir.display(), crate::strerror(&e)))),
    }
}

fn admit_in(cfg: &LimitConfig, dir: &Path, repo_id: &str) -> io::Result<Admission> {
    std::fs::create_dir_all(dir)?;
    let start = Instant::now();
    let deadline = start + cfg.queue_timeout;
    let mut held = Vec::new();
    let groups = [
        (format!("repo-{repo_id}"), cfg.per_repo, "packserve.limit.perRepo"),
        ("host".to_owned(), cfg.per_host, "packserve.limit.perHost"),
    ];
    let pid = std::process::id() as u64;
    for (name, n, key) in groups.iter().filter(|g| g.1 > 0) {
        // Open every slot file once; poll their locks.
        let files = (0..*n)
            .map(|i| sys::open_lock_file(&dir.join(format!("{name}.{i}.slot"))))
            .collect::<io::Result<Vec<File>>>()?;
        let first = (pid % n) as usize;
        let mut wait = Duration::from_millis(5);
        'poll: loop {
            for i in 0..files.len() {
                let k = (first + i) % files.len();
                if sys::try_lock(&files[k], true)? {
                    held.push(files.into_iter().nth(k).ok_or_else(|| io::Error::other("slot index"))?);
                    break 'poll;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let msg = format!(
                    "server busy: {n} pack requests already running ({key}); waited {}s, try again later",
                    start.elapsed().as_secs()
                );
                return Ok(Admission::Busy(start.elapsed(), msg));
            }
            // Spread the pollers a little (pid-based) so they do not wake in step.
            let jitter = Duration::from_millis(pid % 7);
            std::thread::sleep((wait + jitter).min(deadline - now));
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }
    Ok(Admission::Admitted(Admitted { _slots: held }, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_limit_and_free_on_drop() {
        let d = std::env::temp_dir().join(format!("packserve-slots-{}", std::process::id()));
        let cfg = LimitConfig {
            dir: Some(d.clone()),
            per_repo: 1,
            per_host: 2,
            queue_timeout: Duration::from_millis(100),
        };
        let Admission::Admitted(a, _) = admit(&cfg, "r1") else { panic!("first") };
        // Same process, new open file descriptions: flock conflicts between them too.
        assert!(matches!(admit(&cfg, "r1"), Admission::Busy(..)));
        let Admission::Admitted(b, _) = admit(&cfg, "r2") else { panic!("other repo") };
        match admit(&cfg, "r3") {
            Admission::Busy(_, msg) => assert!(msg.contains("perHost"), "{msg}"),
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(matches!(admit(&cfg, "r1"), Admission::Admitted(..)));
        drop(b);
        let _ = std::fs::remove_dir_all(&d);
    }
}
