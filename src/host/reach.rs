//! The reachable-set cache: every object the visible tips reach, stored once per state of the
//! refs, so that without a reachability bitmap a want deep in history (a partial clone's lazy
//! fetch) is checked with a lookup instead of a walk.
//!
//! A state is named by the repository (its canonical path), its own shallow commits and the sorted
//! tips the wants are checked from: what the tips reach is then fixed, whatever repacks happen
//! (objects never change), so the set needs no other invalidation. A push that moves a ref is
//! a new state: its first deep want walks again and writes a new file, replacing the
//! repository's older one.
//!
//! File `<dir>/reach/<repo>-<state>.ids`: the magic `PSREACH1`, the id length (1 byte), then the
//! ids sorted, raw. Written to a temporary file and renamed into place, so a reader sees a
//! whole file or none; a file of the wrong size is ignored (and rewritten).

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::hash::{oid, ObjectId};
use memmap2::Mmap;

use super::KeyHasher;

const MAGIC: &[u8; 8] = b"PSREACH1";
const HEADER: usize = MAGIC.len() + 1;

/// The cache directory's reachable sets.
pub struct ReachCache {
    dir: PathBuf,
}

/// Names one state of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    repo: String,
    state: String,
}

/// A loaded set: membership by binary search over the mapped, sorted ids.
pub struct ReachSet {
    map: Mmap,
    id_len: usize,
}

impl ReachCache {
    /// The sets under `cache_dir` (in its `reach/` subdirectory).
    pub fn new(cache_dir: &Path) -> Self {
        ReachCache { dir: cache_dir.join("reach") }
    }

    /// The key of `tips` (any order) in the repository at `common_dir` whose own shallow
    /// commits are `shallow` (empty when it is not shallow).
    pub fn key(common_dir: &Path, shallow: &gix::hashtable::HashSet<ObjectId>, tips: &[ObjectId]) -> Key {
        let path = common_dir.canonicalize().unwrap_or_else(|_| common_dir.to_path_buf());
        let mut h = KeyHasher::default();
        h.field("reach-repo", path.as_os_str().as_encoded_bytes());
        let repo = h.finish().unwrap_or_default();
        let sorted = |ids: &mut dyn Iterator<Item = &ObjectId>| {
            let mut v: Vec<&ObjectId> = ids.collect();
            v.sort();
            v.dedup();
            v.iter().flat_map(|id| id.as_bytes().iter().copied()).collect::<Vec<u8>>()
        };
        let mut h = KeyHasher::default();
        h.field("reach-state", repo.as_bytes());
        h.field("shallow", &sorted(&mut shallow.iter()));
        h.field("tips", &sorted(&mut tips.iter()));
        Key { state: h.finish().unwrap_or_default(), repo }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}-{}.ids", key.repo, key.state))
    }

    /// The set stored for `key`, if there is a whole one that only its owner could have
    /// written. The set decides what a client may fetch: a file that someone else could have
    /// put there (the directory or the file writable by group or others, or the file owned by
    /// another user than the directory) is not trusted, and the walk answers instead.
    pub fn load(&self, key: &Key) -> Option<ReachSet> {
        use std::os::unix::fs::MetadataExt;
        let dir = std::fs::metadata(&self.dir).ok()?;
        let file = std::fs::File::open(self.path(key)).ok()?;
        let meta = file.metadata().ok()?;
        if dir.mode() & 0o022 != 0 || meta.mode() & 0o022 != 0 || meta.uid() != dir.uid() {
            return None;
        }
        // SAFETY: files here are only ever written whole under another name and renamed into
        // place, never changed after: the mapping cannot change under us.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        if map.len() < HEADER || &map[..MAGIC.len()] != MAGIC {
            return None;
        }
        let id_len = usize::from(map[MAGIC.len()]);
        if !(id_len == 20 || id_len == 32) || !(map.len() - HEADER).is_multiple_of(id_len) {
            return None;
        }
        Some(ReachSet { map, id_len })
    }

    /// Stores `ids` (sorted) as the set of `key`, replacing the repository's other states.
    /// Errors are the caller's to log; nothing half-written is ever visible.
    pub fn store(&self, key: &Key, ids: &[ObjectId]) -> std::io::Result<()> {
        debug_assert!(ids.windows(2).all(|w| w[0] <= w[1]), "ids must be sorted");
        // Writable by its owner only, whatever the umask: see `load`.
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(&self.dir)?;
        let dest = self.path(key);
        let tmp = self.dir.join(format!(".tmp-{}-{}", key.state, std::process::id()));
        // Left by a writer of the same pid that died: never a whole file, never read.
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
            let mut f = std::io::BufWriter::new(file);
            f.write_all(MAGIC)?;
            let id_len = ids.first().map_or(20, |i| i.as_bytes().len());
            f.write_all(&[id_len as u8])?;
            for id in ids.iter() {
                f.write_all(id.as_bytes())?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return result;
        }
        // The repository's older states are of no use any more.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            let prefix = format!("{}-", key.repo);
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(&prefix) && e.path() != dest {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

impl ReachSet {
    /// Whether the set holds `id`.
    pub fn contains(&self, id: &oid) -> bool {
        let want = id.as_bytes();
        if want.len() != self.id_len {
            return false;
        }
        let ids = &self.map[HEADER..];
        let (mut lo, mut hi) = (0usize, ids.len() / self.id_len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = &ids[mid * self.id_len..(mid + 1) * self.id_len];
            match at.cmp(want) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        (self.map.len() - HEADER) / self.id_len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    #[test]
    fn stores_loads_and_replaces_a_repositorys_state() {
        let dir = std::env::temp_dir().join(format!("packserve-reach-test-{}", std::process::id()));
        let cache = ReachCache::new(&dir);
        let repo = std::env::temp_dir();
        let none = gix::hashtable::HashSet::default();
        let shallow: gix::hashtable::HashSet<ObjectId> = [id(5)].into_iter().collect();
        let k1 = ReachCache::key(&repo, &none, &[id(1), id(2)]);
        assert_eq!(
            k1,
            ReachCache::key(&repo, &none, &[id(2), id(1), id(2)]),
            "order and repeats do not matter"
        );
        assert_ne!(
            k1,
            ReachCache::key(&repo, &shallow, &[id(1), id(2)]),
            "the shallow commits are part of the state"
        );
        assert!(cache.load(&k1).is_none());
        cache.store(&k1, &[id(3), id(7), id(9)]).unwrap();
        let set = cache.load(&k1).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains(&id(3)) && set.contains(&id(7)) && set.contains(&id(9)));
        assert!(!set.contains(&id(1)) && !set.contains(&id(8)));
        let k2 = ReachCache::key(&repo, &none, &[id(1)]);
        cache.store(&k2, &[id(4)]).unwrap();
        assert!(cache.load(&k2).is_some_and(|s| s.contains(&id(4))));
        assert!(cache.load(&k1).is_none(), "the older state is gone");
        // A file others could have written is not trusted.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache.path(&k2), std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.load(&k2).is_none());
        std::fs::set_permissions(cache.path(&k2), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(cache.load(&k2).is_some());
        // A damaged file is no set.
        std::fs::write(cache.path(&k2), b"PSREACH1\x14short").unwrap();
        assert!(cache.load(&k2).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
