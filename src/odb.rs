//! Object access for walking: commit parents, dates and generations (commit-graph first, then the
//! object database), tree entries and tag targets. Read-only; never fetches from promisors.
//!
//! Objects have numbers ([`ObjNum`]): a packed object's is given by the packs
//! ([`PackSet::num_of`]); an object in no pack (loose, in a pack that arrived after the packs
//! were listed, or missing) gets the next free number from a small side table the first time it
//! is asked for. The walk, the bitmap code and the pack writer work on numbers; ids are looked
//! up where the wire or an index needs them. [`Odb`] gives the pack writer what it reads through
//! the [`crate::pack::Objects`] interface, so `pack/` never depends on this module.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use gix::hash::{oid, ObjectId};
use gix::objs::Exists;
use gix::objs::Kind;

use crate::pack::read::Reader;
use crate::pack::source::{Location, ObjNum, PackSet, SourceError};

/// Errors reading objects.
#[derive(Debug, thiserror::Error)]
pub enum OdbError {
    #[error("missing object {0}")]
    Missing(ObjectId),
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind { id: ObjectId, actual: Kind, expected: Kind },
    #[error("corrupt object {id}: {message}")]
    Corrupt { id: ObjectId, message: String },
    #[error("cannot read object {id}: {message}")]
    Read { id: ObjectId, message: String },
}

/// What the walk needs of a commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// Root tree.
    pub tree: ObjectId,
    /// Parents in order.
    pub parents: Vec<ObjectId>,
    /// Committer time (seconds since the epoch).
    pub time: i64,
    /// Generation number from the commit-graph, or `u32::MAX` when not in it.
    pub generation: u32,
}

/// An entry of a tree, as far as object selection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A subtree.
    Tree,
    /// A blob (file or symlink).
    Blob,
    /// A gitlink (submodule commit): never followed.
    Commit,
}

/// The object database as the walk sees it.
///
/// Packed objects are looked up in the packs' own indexes ([`crate::pack::idx`], mapped on the
/// first lookup the commit-graph cannot answer) and read through the same mappings the pack is
/// streamed from ([`crate::pack::read`]); gix's object database serves loose objects and packs
/// that arrived after the packs were listed.
pub struct Odb {
    /// gix's object store and the commit-graph: opened with the repository, or (see
    /// [`Odb::lazy`]) the first time an object is looked for beyond the packs.
    gix: std::cell::OnceCell<Result<GixParts, String>>,
    /// Opens the repository through gix, for a lazily opened database.
    open_gix: std::cell::Cell<Option<GixOpen>>,
    packs: std::sync::OnceLock<PackSet>,
    object_dirs: Vec<PathBuf>,
    reader: RefCell<Reader>,
    /// Opening the packs failed once: lookups go to gix instead of listing them again each time
    /// (the error is reported where a pack is written, through [`Odb::packs`]).
    packs_failed: std::cell::Cell<bool>,
    hash: gix::hash::Kind,
    buf: RefCell<Vec<u8>>,
    /// Numbers of objects that are in no pack: ids by number (minus the packed total) and back.
    unpacked: RefCell<Unpacked>,
    /// The numbers of recently looked-up ids.
    recent: RefCell<RecentIds>,
    /// A lookup has re-read the pack directory for an object it did not find (see
    /// [`Odb::objects`]).
    rescanned: std::cell::Cell<bool>,
    /// Where `shallow` is read from.
    common_dir: PathBuf,
    /// The repository's own shallow commits (`$GIT_DIR/shallow`): their parents are not here.
    shallow: std::cell::OnceCell<gix::hashtable::HashSet<ObjectId>>,
}

/// Opens the repository through gix (or says why it cannot).
pub type GixOpen = Box<dyn FnOnce() -> Result<gix::Repository, String> + Send>;

/// What the object database reads through gix.
struct GixParts {
    objects: gix::OdbHandle,
    /// The same store, never re-reading the pack directory on a miss (git's
    /// `OBJECT_INFO_QUICK`): what lookups use once a miss has rescanned it.
    quick: gix::OdbHandle,
    graph: Option<gix::commitgraph::Graph>,
}

impl GixParts {
    fn of(repo: &gix::Repository) -> GixParts {
        let graph = repo.commit_graph_if_enabled().ok().flatten().or_else(|| alternate_graph(repo));
        let mut quick = repo.objects.clone();
        quick.refresh_never();
        GixParts { objects: repo.objects.clone(), quick, graph }
    }
}

/// A direct-mapped cache of id → number for recent lookups. A tree walk looks the entries of
/// every version of a directory up, and successive versions share most of them: a hit here
/// costs one compare in a table that stays in the CPU's caches, where a lookup in a big `.idx`
/// costs a few cache misses. A slot is one 32-byte line part: the id's first 28 bytes and the
/// number. SHA-1 ids are compared whole; a SHA-256 hit is confirmed against the id the number
/// stands for, so a hit is never a wrong number.
struct RecentIds {
    slots: Vec<RecentSlot>,
}

#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct RecentSlot {
    key: [u8; 28],
    /// The number + 1 (0: empty).
    num: u32,
}

/// Slots of [`RecentIds`] (2 MiB).
const RECENT_SLOTS: usize = 1 << 16;

impl RecentIds {
    fn slot(id: &oid) -> usize {
        let b = id.as_bytes();
        (usize::from(b[1]) << 8 | usize::from(b[2])) & (RECENT_SLOTS - 1)
    }

    /// The cached number of `id`; for ids longer than a slot's key, `confirm` checks it.
    fn get(&self, id: &oid, confirm: impl Fn(ObjNum) -> bool) -> Option<ObjNum> {
        let slot = self.slots.get(Self::slot(id))?;
        let b = id.as_bytes();
        let n = b.len().min(28);
        // Word compares: no call to memcmp on this hot path.
        let word = |x: &[u8], i: usize| u64::from_ne_bytes(x[i..i + 8].try_into().unwrap_or_default());
        let same = slot.num != 0
            && word(&slot.key, 0) == word(b, 0)
            && word(&slot.key, 8) == word(b, 8)
            && slot.key[16..n] == b[16..n];
        let num = slot.num.wrapping_sub(1);
        (same && (b.len() <= 28 || confirm(num))).then_some(num)
    }

    fn put(&mut self, id: &oid, num: ObjNum) {
        if self.slots.is_empty() {
            self.slots = vec![RecentSlot { key: [0; 28], num: 0 }; RECENT_SLOTS];
        }
        let b = id.as_bytes();
        let n = b.len().min(28);
        let slot = &mut self.slots[Self::slot(id)];
        slot.key[..n].copy_from_slice(&b[..n]);
        slot.num = num + 1;
    }
}

/// The side table of objects in no pack.
#[derive(Default)]
struct Unpacked {
    ids: Vec<ObjectId>,
    nums: gix::hashtable::HashMap<ObjectId, u32>,
}

/// Object directories: the repository's own, then its alternates (recursively, as git reads them).
pub fn object_dirs(objects: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![objects.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() && dirs.len() < 64 {
        let dir = dirs[i].clone();
        if let Ok(text) = std::fs::read_to_string(dir.join("info/alternates")) {
            for line in text.lines() {
                let line = line.trim_end();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let p = PathBuf::from(line);
                let p = if p.is_absolute() { p } else { dir.join(p) };
                let p = p.canonicalize().unwrap_or(p);
                if !dirs.contains(&p) {
                    dirs.push(p);
                }
            }
        }
        i += 1;
    }
    dirs
}

/// The commit-graph of the first alternate object directory that has one, as git uses it
/// when the repository has none of its own (forks sharing a network's objects).
fn alternate_graph(repo: &gix::Repository) -> Option<gix::commitgraph::Graph> {
    let store = repo.objects.store_ref();
    if repo.config_snapshot().boolean("core.commitGraph") == Some(false)
        || store.replacements().next().is_some()
    {
        return None;
    }
    object_dirs(store.path())
        .iter()
        .skip(1)
        .find_map(|alt| gix::commitgraph::Graph::at(&alt.join("info"), repo.object_hash(), None).ok())
}

impl Odb {
    /// Wraps a repository's objects and (if enabled) its commit-graph.
    pub fn new(repo: gix::Repository) -> Self {
        let odb = Odb::with(repo.common_dir(), repo.object_hash(), None);
        let _ = odb.gix.set(Ok(GixParts::of(&repo)));
        odb
    }

    /// The object database of the repository whose common directory is `common_dir`, opened
    /// through gix by `open` only when an object is looked for beyond the packs (a loose or
    /// missing one, or a commit the commit-graph would answer for): a ref listing mostly
    /// needs nothing but pack indexes, to peel.
    pub fn lazy(common_dir: &Path, hash: gix::hash::Kind, open: GixOpen) -> Self {
        Odb::with(common_dir, hash, Some(open))
    }

    fn with(common_dir: &Path, hash: gix::hash::Kind, open: Option<GixOpen>) -> Self {
        Odb {
            gix: std::cell::OnceCell::new(),
            open_gix: std::cell::Cell::new(open),
            packs: std::sync::OnceLock::new(),
            object_dirs: object_dirs(&common_dir.join("objects")),
            reader: RefCell::new(Reader::default()),
            packs_failed: std::cell::Cell::new(false),
            hash,
            buf: RefCell::new(Vec::new()),
            unpacked: RefCell::new(Unpacked::default()),
            recent: RefCell::new(RecentIds { slots: Vec::new() }),
            rescanned: std::cell::Cell::new(false),
            common_dir: common_dir.to_owned(),
            shallow: std::cell::OnceCell::new(),
        }
    }

    /// gix's parts, opened now if they were not; the error when the repository could not be
    /// opened.
    fn gix(&self) -> Result<&GixParts, &str> {
        let parts = self.gix.get_or_init(|| match self.open_gix.take() {
            Some(open) => open().map(|repo| GixParts::of(&repo)),
            None => Err("the object database is not open".into()),
        });
        parts.as_ref().map_err(String::as_str)
    }

    /// gix's object store, or the error for `id` when the repository could not be opened.
    /// gix's store for looking up `id`: one that may re-read the pack directory when `id` is
    /// not found, until one lookup has done so; then one that never does. A request naming
    /// many unknown objects (`have` lines) rescans `objects/pack` at most once, as git's quick
    /// lookups do, while an object pushed since the packs were listed is still found.
    fn objects(&self, id: &oid) -> Result<&gix::OdbHandle, OdbError> {
        let g = self.gix().map_err(|m| OdbError::Read { id: id.to_owned(), message: m.to_owned() })?;
        if self.rescanned.get() || g.quick.exists(id) {
            return Ok(&g.quick);
        }
        self.rescanned.set(true);
        Ok(&g.objects)
    }

    /// Whether gix finds `id` (loose, or in a pack that arrived after the packs were listed).
    fn gix_has(&self, id: &oid) -> bool {
        self.objects(id).is_ok_and(|o| o.exists(id)) || self.is_empty_tree(id)
    }

    /// The repository's packs (its own and its alternates'), mapped on first use.
    pub fn packs(&self) -> Result<&PackSet, SourceError> {
        if let Some(p) = self.packs.get() {
            return Ok(p);
        }
        let set = PackSet::open(&self.object_dirs, self.hash)?;
        Ok(self.packs.get_or_init(|| set))
    }

    /// The packs, or none when they could not be opened (then every object is read through gix
    /// and numbered in the side table; the error is reported where a pack is written).
    fn packs_or_none(&self) -> Option<&PackSet> {
        if self.packs_failed.get() {
            return None;
        }
        match self.packs() {
            Ok(p) => Some(p),
            Err(_) => {
                self.packs_failed.set(true);
                None
            }
        }
    }

    /// The number of packed objects: unpacked objects are numbered from here.
    pub fn packed_total(&self) -> ObjNum {
        self.packs_or_none().map_or(0, PackSet::total)
    }

    /// One more than the highest number given out so far (packed objects and the side table).
    pub fn num_end(&self) -> ObjNum {
        self.packed_total() + self.unpacked.borrow().ids.len() as ObjNum
    }

    /// The number of `id` if it exists: packed, already numbered, or found by gix (loose, or in
    /// a pack that arrived after the packs were listed).
    pub fn num(&self, id: &oid) -> Option<ObjNum> {
        if let Some(n) = self.packs_or_none().and_then(|p| p.num_of(id)) {
            return Some(n);
        }
        if let Some(&n) = self.unpacked.borrow().nums.get(id) {
            return Some(self.packed_total() + n);
        }
        self.gix_has(id).then(|| self.add_unpacked(id))
    }

    /// The number of `id`, giving it one if it has none yet, whether or not the object exists
    /// (a tree entry is numbered before anything reads it; reading a missing one fails then).
    pub fn num_or_add(&self, id: &oid) -> ObjNum {
        if let Some(n) =
            self.recent.borrow().get(id, |n| self.packs_or_none().and_then(|p| p.oid_of(n)) == Some(id))
        {
            return n;
        }
        if let Some(n) = self.packs_or_none().and_then(|p| p.num_of(id)) {
            self.recent.borrow_mut().put(id, n);
            return n;
        }
        if let Some(&n) = self.unpacked.borrow().nums.get(id) {
            return self.packed_total() + n;
        }
        self.add_unpacked(id)
    }

    fn add_unpacked(&self, id: &oid) -> ObjNum {
        let mut u = self.unpacked.borrow_mut();
        let n = u.ids.len() as u32;
        u.ids.push(id.to_owned());
        u.nums.insert(id.to_owned(), n);
        self.packed_total() + n
    }

    /// The id of object number `num` (a number this database gave out).
    pub fn id(&self, num: ObjNum) -> ObjectId {
        let total = self.packed_total();
        if num < total {
            if let Some(id) = self.packs_or_none().and_then(|p| p.oid_of(num)) {
                return id.to_owned();
            }
        }
        self.unpacked
            .borrow()
            .ids
            .get((num - total) as usize)
            .copied()
            .unwrap_or_else(|| ObjectId::null(self.hash))
    }

    /// Whether object number `num` is in no pack (read through gix).
    pub fn is_unpacked(&self, num: ObjNum) -> bool {
        num >= self.packed_total()
    }

    /// Reads object number `num` into `buf`, returning its kind.
    pub fn read_num(&self, num: ObjNum, buf: &mut Vec<u8>) -> Result<Kind, OdbError> {
        match self.packs_or_none().and_then(|p| p.location(num).map(|l| (p, l))) {
            Some((packs, loc)) => {
                self.reader.borrow_mut().read(packs, loc, buf).map_err(|e| Self::pack_error(&self.id(num), e))
            }
            None => self.read_unpacked(&self.id(num), buf),
        }
    }

    /// The kind of object number `num`, `None` if it doesn't exist.
    pub fn kind_num(&self, num: ObjNum) -> Result<Option<Kind>, OdbError> {
        match self.packs_or_none().and_then(|p| p.location(num).map(|l| (p, l))) {
            Some((packs, loc)) => self
                .reader
                .borrow_mut()
                .kind(packs, loc)
                .map(Some)
                .map_err(|e| Self::pack_error(&self.id(num), e)),
            None => self.header_unpacked(&self.id(num)).map(|h| h.map(|h| h.0)),
        }
    }

    /// The size of object number `num`, `None` if it doesn't exist.
    pub fn size_num(&self, num: ObjNum) -> Result<Option<u64>, OdbError> {
        match self.packs_or_none().and_then(|p| p.location(num).map(|l| (p, l))) {
            Some((packs, loc)) => self
                .reader
                .borrow_mut()
                .size(packs, loc)
                .map(Some)
                .map_err(|e| Self::pack_error(&self.id(num), e)),
            None => self.header_unpacked(&self.id(num)).map(|h| h.map(|h| h.1)),
        }
    }

    fn read_unpacked(&self, id: &oid, buf: &mut Vec<u8>) -> Result<Kind, OdbError> {
        match gix::objs::Find::try_find(self.objects(id)?, id, buf) {
            Ok(Some(d)) => Ok(d.kind),
            Ok(None) if self.is_empty_tree(id) => {
                buf.clear();
                Ok(Kind::Tree)
            }
            Ok(None) => Err(OdbError::Missing(id.to_owned())),
            Err(e) => Err(OdbError::Read { id: id.to_owned(), message: e.to_string() }),
        }
    }

    fn header_unpacked(&self, id: &oid) -> Result<Option<(Kind, u64)>, OdbError> {
        match gix::objs::FindHeader::try_header(self.objects(id)?, id) {
            Ok(None) if self.is_empty_tree(id) => Ok(Some((Kind::Tree, 0))),
            Ok(h) => Ok(h.map(|h| (h.kind, h.size))),
            Err(e) => Err(OdbError::Read { id: id.to_owned(), message: e.to_string() }),
        }
    }

    /// Whether `id` is the empty tree, which git treats as always present (a commit may name
    /// it without the repository storing it; git sends it all the same).
    fn is_empty_tree(&self, id: &oid) -> bool {
        id == ObjectId::empty_tree(self.hash)
    }

    /// The commit-graph, if the repository has one in use.
    pub fn graph(&self) -> Option<&gix::commitgraph::Graph> {
        self.gix().ok().and_then(|g| g.graph.as_ref())
    }

    /// Calls `f` for each entry of tree number `num`; `buf` holds the tree meanwhile.
    pub fn for_each_tree_entry_num(
        &self,
        num: ObjNum,
        buf: &mut Vec<u8>,
        f: impl FnMut(EntryKind, &[u8], &oid),
    ) -> Result<(), OdbError> {
        let kind = self.read_num(num, buf)?;
        if kind != Kind::Tree {
            return Err(OdbError::WrongKind { id: self.id(num), actual: kind, expected: Kind::Tree });
        }
        self.parse_tree(&self.id_if_needed(num), buf, f)
    }

    /// The id for error messages about `num` (cheap: only made when a message needs it).
    fn id_if_needed(&self, num: ObjNum) -> LazyId<'_> {
        LazyId { odb: self, num }
    }

    /// Lets go of the decoded delta bases kept for the walk.
    pub fn drop_caches(&self) {
        *self.reader.borrow_mut() = Reader::default();
        *self.recent.borrow_mut() = RecentIds { slots: Vec::new() };
    }

    /// Where `id` is in the packs (mapped on first use), `None` if it is loose or missing.
    fn packed(&self, id: &oid) -> Option<(&PackSet, Location)> {
        if self.packs_failed.get() {
            return None;
        }
        let Ok(packs) = self.packs() else {
            self.packs_failed.set(true);
            return None;
        };
        packs.locate(id).map(|loc| (packs, loc))
    }

    fn pack_error(id: &oid, e: SourceError) -> OdbError {
        OdbError::Read { id: id.to_owned(), message: e.to_string() }
    }

    /// The repository's own shallow commits (it is a shallow clone itself when not empty).
    pub fn shallow(&self) -> &gix::hashtable::HashSet<ObjectId> {
        self.shallow.get_or_init(|| {
            std::fs::read(self.common_dir.join("shallow"))
                .map(|text| text.split(|&b| b == b'\n').filter_map(|l| hex_oid(l, self.hash)).collect())
                .unwrap_or_default()
        })
    }

    /// The hash kind of the repository.
    pub fn hash_kind(&self) -> gix::hash::Kind {
        self.hash
    }

    /// Whether the object exists (packed or loose). The commit-graph answers for the commits
    /// it lists: a small table, where a lookup in a big pack index touches pages all over it.
    pub fn exists(&self, id: &oid) -> bool {
        self.graph().is_some_and(|g| g.lookup(id).is_some()) || self.packed(id).is_some() || self.gix_has(id)
    }

    /// The kind of an object, `None` if it doesn't exist.
    pub fn kind(&self, id: &oid) -> Result<Option<Kind>, OdbError> {
        if self.graph().is_some_and(|g| g.lookup(id).is_some()) {
            return Ok(Some(Kind::Commit));
        }
        self.kind_beyond_graph(id)
    }

    /// The kind of an object a ref names (to peel it): as [`Odb::kind`], but the packs are asked
    /// first, so that a listing of refs to packed objects opens nothing else.
    pub fn kind_of_tip(&self, id: &oid) -> Result<Option<Kind>, OdbError> {
        match self.packed(id) {
            Some((packs, loc)) => {
                self.reader.borrow_mut().kind(packs, loc).map(Some).map_err(|e| Self::pack_error(id, e))
            }
            None => self.kind(id),
        }
    }

    fn kind_beyond_graph(&self, id: &oid) -> Result<Option<Kind>, OdbError> {
        if let Some((packs, loc)) = self.packed(id) {
            return self.reader.borrow_mut().kind(packs, loc).map(Some).map_err(|e| Self::pack_error(id, e));
        }
        self.header_unpacked(id).map(|h| h.map(|h| h.0))
    }

    /// The size of an object, `None` if it doesn't exist.
    pub fn size(&self, id: &oid) -> Result<Option<u64>, OdbError> {
        if let Some((packs, loc)) = self.packed(id) {
            return self.reader.borrow_mut().size(packs, loc).map(Some).map_err(|e| Self::pack_error(id, e));
        }
        self.header_unpacked(id).map(|h| h.map(|h| h.1))
    }

    /// Reads the whole object into `buf`, returning its kind.
    pub fn read(&self, id: &oid, buf: &mut Vec<u8>) -> Result<Kind, OdbError> {
        if let Some((packs, loc)) = self.packed(id) {
            return self.reader.borrow_mut().read(packs, loc, buf).map_err(|e| Self::pack_error(id, e));
        }
        self.read_unpacked(id, buf)
    }

    fn read_kind(&self, id: &oid, expected: Kind, buf: &mut Vec<u8>) -> Result<(), OdbError> {
        let actual = self.read(id, buf)?;
        if actual != expected {
            return Err(OdbError::WrongKind { id: id.to_owned(), actual, expected });
        }
        Ok(())
    }

    /// Parents, tree, date and generation of a commit. The repository's shallow commits have
    /// no parents, as git's grafts make it.
    pub fn commit(&self, id: &oid) -> Result<CommitInfo, OdbError> {
        let mut info = self.commit_as_stored(id)?;
        let shallow = self.shallow();
        if !shallow.is_empty() && shallow.contains(id) {
            info.parents.clear();
        }
        Ok(info)
    }

    fn commit_as_stored(&self, id: &oid) -> Result<CommitInfo, OdbError> {
        if let Some(g) = self.graph() {
            if let Some(c) = g.commit_by_id(id) {
                let mut parents = Vec::with_capacity(2);
                for p in c.iter_parents() {
                    let p = p.map_err(|e| OdbError::Corrupt { id: id.to_owned(), message: e.to_string() })?;
                    parents.push(g.id_at(p).to_owned());
                }
                return Ok(CommitInfo {
                    tree: c.root_tree_id().to_owned(),
                    parents,
                    time: c.committer_timestamp() as i64,
                    generation: c.generation(),
                });
            }
        }
        let mut buf = self.buf.borrow_mut();
        self.read_kind(id, Kind::Commit, &mut buf)?;
        parse_commit(&buf, self.hash)
            .ok_or_else(|| OdbError::Corrupt { id: id.to_owned(), message: "cannot parse commit".into() })
    }

    /// The object a tag points at, and its kind as the tag says.
    pub fn tag_target(&self, id: &oid) -> Result<(ObjectId, Kind), OdbError> {
        let mut buf = self.buf.borrow_mut();
        self.read_kind(id, Kind::Tag, &mut buf)?;
        parse_tag(&buf, self.hash)
            .ok_or_else(|| OdbError::Corrupt { id: id.to_owned(), message: "cannot parse tag".into() })
    }

    /// Follows tags until a non-tag object: returns it and its kind.
    pub fn peel(&self, id: &oid) -> Result<(ObjectId, Kind), OdbError> {
        let mut cur = id.to_owned();
        let mut kind = self.kind(&cur)?.ok_or(OdbError::Missing(cur))?;
        let mut depth = 0;
        while kind == Kind::Tag {
            depth += 1;
            if depth > 1000 {
                return Err(OdbError::Corrupt { id: id.to_owned(), message: "tag chain too long".into() });
            }
            cur = self.tag_target(&cur)?.0;
            kind = self.kind(&cur)?.ok_or(OdbError::Missing(cur))?;
        }
        Ok((cur, kind))
    }

    /// Calls `f` for each entry of a tree.
    pub fn for_each_tree_entry(
        &self,
        id: &oid,
        buf: &mut Vec<u8>,
        f: impl FnMut(EntryKind, &[u8], &oid),
    ) -> Result<(), OdbError> {
        self.read_kind(id, Kind::Tree, buf)?;
        self.parse_tree(&id.to_owned(), buf, f)
    }

    fn parse_tree(
        &self,
        id: &dyn TreeName,
        buf: &[u8],
        mut f: impl FnMut(EntryKind, &[u8], &oid),
    ) -> Result<(), OdbError> {
        let hash_len = self.hash.len_in_bytes();
        let mut rest: &[u8] = buf;
        while !rest.is_empty() {
            let bad = || OdbError::Corrupt { id: id.id(), message: "bad tree entry".into() };
            let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
            let mode = &rest[..sp];
            let nul = rest[sp + 1..].iter().position(|&b| b == 0).ok_or_else(bad)? + sp + 1;
            let name = &rest[sp + 1..nul];
            let oid_end = nul + 1 + hash_len;
            if rest.len() < oid_end {
                return Err(bad());
            }
            let eid = oid::try_from_bytes(&rest[nul + 1..oid_end]).map_err(|_| bad())?;
            // Modes: 40000 (tree), 160000 (gitlink), 100644/100755/120000 (blobs); git also
            // reads a leading zero (040000).
            let kind = match (mode.first(), mode.get(1)) {
                (Some(b'4'), _) | (Some(b'0'), Some(b'4')) => EntryKind::Tree,
                (Some(b'1'), Some(b'6')) if mode.len() == 6 => EntryKind::Commit,
                _ => EntryKind::Blob,
            };
            f(kind, name, eid);
            rest = &rest[oid_end..];
        }
        Ok(())
    }
}

/// Names a tree in an error message without looking its id up unless there is an error.
trait TreeName {
    fn id(&self) -> ObjectId;
}

impl TreeName for ObjectId {
    fn id(&self) -> ObjectId {
        *self
    }
}

struct LazyId<'a> {
    odb: &'a Odb,
    num: ObjNum,
}

impl TreeName for LazyId<'_> {
    fn id(&self) -> ObjectId {
        self.odb.id(self.num)
    }
}

impl crate::pack::Objects for Odb {
    fn read(&self, num: ObjNum, buf: &mut Vec<u8>) -> Result<Kind, crate::pack::ObjectError> {
        self.read_num(num, buf).map_err(|e| crate::pack::ObjectError(e.to_string()))
    }

    fn id(&self, num: ObjNum) -> ObjectId {
        Odb::id(self, num)
    }

    fn num(&self, id: &oid) -> Option<ObjNum> {
        Odb::num(self, id)
    }

    fn hash_kind(&self) -> gix::hash::Kind {
        self.hash
    }

    fn size(&self, num: ObjNum) -> Result<u64, crate::pack::ObjectError> {
        let err = |e: OdbError| crate::pack::ObjectError(e.to_string());
        self.size_num(num)
            .map_err(err)?
            .ok_or_else(|| crate::pack::ObjectError(format!("missing object {}", self.id(num))))
    }

    fn header(&self, num: ObjNum) -> Result<(Kind, u64), crate::pack::ObjectError> {
        let err = |e: OdbError| crate::pack::ObjectError(e.to_string());
        let missing = || crate::pack::ObjectError(format!("missing object {}", self.id(num)));
        let kind = self.kind_num(num).map_err(err)?.ok_or_else(missing)?;
        let size = self.size_num(num).map_err(err)?.ok_or_else(missing)?;
        Ok((kind, size))
    }
}

fn hex_oid(s: &[u8], hash: gix::hash::Kind) -> Option<ObjectId> {
    if s.len() != hash.len_in_hex() {
        return None;
    }
    ObjectId::from_hex(s).ok()
}

/// Parses the header lines of a commit: tree, parents, committer time.
pub fn parse_commit(data: &[u8], hash: gix::hash::Kind) -> Option<CommitInfo> {
    let mut tree = None;
    let mut parents = Vec::new();
    let mut time = 0i64;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(t) = line.strip_prefix(b"tree ") {
            tree = Some(hex_oid(t, hash)?);
        } else if let Some(p) = line.strip_prefix(b"parent ") {
            parents.push(hex_oid(p, hash)?);
        } else if let Some(c) = line.strip_prefix(b"committer ") {
            time = signature_time(c).unwrap_or(0);
        }
    }
    Some(CommitInfo { tree: tree?, parents, time, generation: u32::MAX })
}

/// The seconds field of `Name <email> 1234567890 +0000`.
fn signature_time(sig: &[u8]) -> Option<i64> {
    let gt = sig.iter().rposition(|&b| b == b'>')?;
    let rest = std::str::from_utf8(&sig[gt + 1..]).ok()?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Parses `object` and `type` of a tag.
pub fn parse_tag(data: &[u8], hash: gix::hash::Kind) -> Option<(ObjectId, Kind)> {
    let mut target = None;
    let mut kind = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(t) = line.strip_prefix(b"object ") {
            target = Some(hex_oid(t, hash)?);
        } else if let Some(t) = line.strip_prefix(b"type ") {
            kind = Some(Kind::from_bytes(t).ok()?);
        }
    }
    Some((target?, kind?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_headers() {
        let c = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nparent 2222222222222222222222222222222222222222\nauthor A <a@b> 5 +0000\ncommitter C <c@d> 1234567890 +0200\n\nmsg\nparent 3333333333333333333333333333333333333333\n";
        let info = parse_commit(c, gix::hash::Kind::Sha1).unwrap();
        assert_eq!(info.parents.len(), 2);
        assert_eq!(info.time, 1234567890);
        assert_eq!(info.tree.to_string(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    }

    #[test]
    fn rejects_bad_commit() {
        assert!(parse_commit(b"tree zz\n\n", gix::hash::Kind::Sha1).is_none());
        assert!(parse_commit(b"author x\n\n", gix::hash::Kind::Sha1).is_none());
    }

    #[test]
    fn parses_tag() {
        let t = b"object 1111111111111111111111111111111111111111\ntype commit\ntag v1\ntagger T <t@t> 1 +0000\n\nmsg\n";
        let (id, kind) = parse_tag(t, gix::hash::Kind::Sha1).unwrap();
        assert_eq!(kind, Kind::Commit);
        assert_eq!(id.to_string(), "1111111111111111111111111111111111111111");
    }
}
