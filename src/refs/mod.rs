//! The refs a client may see: HEAD and the refs under `refs/` (inside `GIT_NAMESPACE` if one
//! is set, with the namespace prefix stripped), minus the hidden ones (`transfer.hideRefs`,
//! `uploadpack.hideRefs`), in git's order, with annotated tags peeled and symbolic refs
//! resolved. It reads the ref store itself, as git 2.47's files backend does
//! ([`files`], [`packed`]); it knows nothing of the protocol.
//!
//! What one listing costs: the loose ref files under the requested prefixes are listed and
//! read (they are few), then `packed-refs` is mapped and walked in place — it is sorted, so
//! the loose refs are merged into it as it is walked and nothing is allocated per ref. Ids
//! are taken as stored: like git, nothing checks that a ref's object exists. Peeled values
//! come from `packed-refs` (`fully-peeled`); only loose refs and HEAD have their object
//! looked at, and only when a listing shows peeled values.
//!
//! Broken refs are listed as git (2.36+, `GIT_REF_PARANOIA` on by default) lists them, so that
//! a client fails loudly instead of silently missing a ref: a ref whose object is missing with
//! the id it stores, a loose ref whose file is not a ref or a ref with a bad name with the
//! null id; symbolic refs whose target is missing or broken are left out, and a `packed-refs`
//! line git cannot parse ends the session with git's message.

pub mod files;
pub mod name;
pub mod packed;

use gix::hash::ObjectId;
use gix::objs::Kind;

pub use files::Dirs;
use files::{Raw, ReadError, Resolved};
use packed::{Packed, Peeled};

use crate::odb::Odb;

/// Which refs are visible: the namespace and the hideRefs rules.
#[derive(Debug, Clone, Default)]
pub struct RefView {
    /// `GIT_NAMESPACE`, if set (e.g. `foo` or `a/b`).
    pub namespace: Option<String>,
    /// hideRefs values in configuration order.
    pub hide: Vec<String>,
}

impl RefView {
    /// The full-name prefix of the namespace (`refs/namespaces/a/refs/namespaces/b/`), or "".
    pub fn prefix(&self) -> String {
        let mut p = String::new();
        if let Some(ns) = &self.namespace {
            for part in ns.split('/').filter(|c| !c.is_empty()) {
                p.push_str("refs/namespaces/");
                p.push_str(part);
                p.push('/');
            }
        }
        p
    }

    /// git's `ref_is_hidden`: the last matching rule wins; `!` negates; `^` matches the full
    /// (namespaced) name instead of the stripped one. A rule matches a name equal to it or
    /// starting with it followed by `/`.
    pub fn is_hidden(&self, refname: &[u8], refname_full: &[u8]) -> bool {
        for rule in self.hide.iter().rev() {
            let (neg, rule) = match rule.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, rule.as_str()),
            };
            let (subject, rule) = match rule.strip_prefix('^') {
                Some(r) => (refname_full, r),
                None => (refname, rule),
            };
            if let Some(rest) = subject.strip_prefix(rule.as_bytes()) {
                if rest.is_empty() || rest.starts_with(b"/") {
                    return !neg;
                }
            }
        }
        false
    }
}

/// Which full names a listing reads: those starting with one of a few prefixes (git's
/// `find_longest_prefixes`: sorted, none the prefix of another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    prefixes: Vec<Vec<u8>>,
}

impl Scope {
    /// Every ref of the namespace `ns` (a [`RefView::prefix`]): `<ns>refs/`.
    pub fn all(ns: &[u8]) -> Scope {
        Scope { prefixes: vec![[ns, b"refs/"].concat()] }
    }

    /// `ls-refs`' `ref-prefix` values inside namespace `ns`; no prefix means every ref name in
    /// the namespace (git lists the namespace's own HEAD then too).
    pub fn prefixes<P: AsRef<[u8]>>(ns: &[u8], prefixes: &[P]) -> Scope {
        let mut all: Vec<Vec<u8>> = prefixes.iter().map(|p| [ns, p.as_ref()].concat()).collect();
        if all.is_empty() {
            all.push(ns.to_vec());
        }
        all.sort();
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(all.len());
        for p in all {
            if !kept.last().is_some_and(|k| p.starts_with(k)) {
                kept.push(p);
            }
        }
        Scope { prefixes: kept }
    }

    /// Whether `name` starts with one of the prefixes. The only candidate is the greatest
    /// prefix not above `name`: no other prefix sorts between it and a name it starts.
    pub fn matches(&self, name: &[u8]) -> bool {
        let i = self.prefixes.partition_point(|p| p.as_slice() <= name);
        i > 0 && name.starts_with(&self.prefixes[i - 1])
    }

    /// Whether directory `dir` (ending with `/`) may hold names in scope.
    fn may_hold(&self, dir: &[u8]) -> bool {
        let i = self.prefixes.partition_point(|p| p.as_slice() < dir);
        self.matches(dir) || self.prefixes.get(i).is_some_and(|p| p.starts_with(dir))
    }

    /// The first prefix above `name` (where to go on after a name out of scope).
    fn next_after(&self, name: &[u8]) -> Option<&[u8]> {
        let i = self.prefixes.partition_point(|p| p.as_slice() <= name);
        self.prefixes.get(i).map(Vec::as_slice)
    }

    fn first(&self) -> &[u8] {
        self.prefixes.first().map_or(&[], Vec::as_slice)
    }
}

/// Errors reading refs.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    /// Git's message for a `packed-refs` it dies on (`unexpected line in <path>: <line>`,
    /// `packed refname is dangerous: <name>`).
    #[error("{0}")]
    PackedRefs(String),
}

impl From<packed::PackedError> for RefsError {
    fn from(e: packed::PackedError) -> Self {
        RefsError::PackedRefs(e.0)
    }
}

/// A loose ref as listed: resolved through symbolic refs.
struct Loose {
    name: Vec<u8>,
    id: ObjectId,
    /// The final ref a symbolic ref leads to.
    target: Option<Vec<u8>>,
}

/// An object id as a listing carries it: parsed, or the hex a packed record stores (lowercase:
/// as git prints ids), parsed only where the id itself is needed and copied as it is into a
/// listing.
#[derive(Debug, Clone, Copy)]
pub enum Id<'a> {
    /// A parsed id.
    Parsed(ObjectId),
    /// An id in lowercase hex (checked to be hex when `packed-refs` was opened).
    Hex(&'a [u8]),
}

impl Id<'_> {
    /// The id.
    pub fn get(&self) -> ObjectId {
        match self {
            Id::Parsed(id) => *id,
            Id::Hex(hex) => packed::parse_hex(hex),
        }
    }

    /// Appends the id in lowercase hex to `out`.
    pub fn push_hex(&self, out: &mut Vec<u8>) {
        match self {
            Id::Parsed(id) => packed::push_hex(id, out),
            Id::Hex(hex) => out.extend_from_slice(hex),
        }
    }
}

impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Id<'_> {}

impl From<ObjectId> for Id<'_> {
    fn from(id: ObjectId) -> Self {
        Id::Parsed(id)
    }
}

/// How a listed ref's peeled value is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peel<'a> {
    /// It does not peel (not a tag, or a broken ref), as `packed-refs` says or as git decides.
    No,
    /// `packed-refs` has it (hex).
    Stored(&'a [u8]),
    /// The object has to be looked at (loose refs, and packed ones the header says nothing of).
    Lookup,
}

/// One ref in scope, hidden or not.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The full name (`refs/namespaces/<ns>/refs/heads/main`).
    pub full: &'a [u8],
    /// The name without the namespace (`refs/heads/main`).
    pub name: &'a [u8],
    /// What it points at: the stored id (its object may be missing), or the null id for a
    /// broken ref.
    pub id: Id<'a>,
    /// For a symbolic ref, the full name of the ref it finally points to.
    pub symref_target: Option<&'a [u8]>,
    /// Where its peeled value comes from.
    pub peel: Peel<'a>,
    /// Whether hideRefs hides it.
    pub hidden: bool,
}

/// A ref as advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ref<'a> {
    /// The name without the namespace (`HEAD`, `refs/heads/main`).
    pub name: &'a [u8],
    /// What it points at.
    pub id: Id<'a>,
    /// The non-tag object an annotated tag finally points at.
    pub peeled: Option<Id<'a>>,
}

/// The refs of a repository as read for one listing: the loose refs in scope, `packed-refs`
/// and HEAD, with the namespace and hideRefs rules that say what is visible.
pub struct Refs {
    ns: Vec<u8>,
    view: RefView,
    scope: Scope,
    packed: Option<Packed>,
    loose: Vec<Loose>,
    head: Resolved,
    head_hidden: bool,
}

impl Refs {
    /// Reads the refs in `scope`, in git's order: the loose ref files first, then
    /// `packed-refs`. A concurrent `git pack-refs` writes `packed-refs` before it deletes the
    /// loose files, so a ref it moves is seen in one or the other; reading `packed-refs`
    /// first could miss it. `packed_shown` is how git names `packed-refs` in its messages.
    pub fn read(
        dirs: &Dirs,
        packed_shown: &str,
        hash: gix::hash::Kind,
        view: &RefView,
        scope: Scope,
    ) -> Result<Refs, RefsError> {
        let files = files::walk(dirs, hash, |d| scope.may_hold(d), |n| scope.matches(n));
        let packed = Packed::open(&dirs.common_dir.join("packed-refs"), packed_shown, hash)?;
        // git's `read_raw_ref`: a ref's file (as listed, if it was), else its packed record.
        let read = |name: &[u8]| -> Result<Raw, ReadError> {
            let raw = match files.binary_search_by(|f| f.name.as_slice().cmp(name)) {
                Ok(i) => files[i].raw.clone(),
                Err(_) => files::read_file(dirs, name, hash),
            };
            match raw {
                Err(e @ (ReadError::NotFound | ReadError::IsDir)) => {
                    packed.as_ref().and_then(|p| p.find(name)).map(Raw::Id).ok_or(e)
                }
                other => other,
            }
        };
        let null = ObjectId::null(hash);
        let mut loose = Vec::with_capacity(files.len());
        for f in &files {
            // A bad name never resolves; git lists it with the null id, as a broken ref.
            let (id, target) = match files::resolve(&f.name, read) {
                Resolved::Found { id, target } if !id.is_null() => (id, target),
                // Symbolic refs that lead nowhere are left out (DO_FOR_EACH_OMIT_DANGLING_SYMREFS).
                r if r.symbolic() => continue,
                _ => (null, None),
            };
            loose.push(Loose { name: f.name.clone(), id, target });
        }
        let ns = view.prefix().into_bytes();
        let head_full = [&ns[..], b"HEAD"].concat();
        let head = files::resolve(&head_full, read);
        let head_hidden = view.is_hidden(b"HEAD", &head_full);
        Ok(Refs { ns, view: view.clone(), scope, packed, loose, head, head_hidden })
    }

    /// The refs in scope, hidden ones included, in name order (loose and packed merged, a
    /// loose ref winning over its packed copy).
    pub fn entries(&self) -> Entries<'_> {
        let records = self.packed.as_ref().map(|p| p.records_from(self.scope.first()));
        Entries { refs: self, records, pending: None, loose: 0 }
    }

    /// HEAD as git's v0 advertisement reads it (`refs_head_ref_namespaced`): its id (the null
    /// id if the ref it leads to holds that) and, when it is symbolic, the full name of the ref
    /// it leads to; `None` when it does not lead to an id.
    pub fn head(&self) -> Option<(ObjectId, Option<&[u8]>)> {
        self.head.reading()
    }

    /// Whether hideRefs hides HEAD.
    pub fn head_hidden(&self) -> bool {
        self.head_hidden
    }

    /// The full name of the branch a symbolic HEAD leads to when that has no object: it does
    /// not exist, or holds the null id (ls-refs' `unborn`).
    pub fn unborn_head(&self) -> Option<&[u8]> {
        match &self.head {
            Resolved::Found { id, target: Some(t) } if id.is_null() => Some(t),
            Resolved::Missing { name, symbolic: true } => Some(name),
            _ => None,
        }
    }

    /// `full` without the namespace when it is a ref inside it; else `full` as it is.
    pub fn strip<'a>(&self, full: &'a [u8]) -> &'a [u8] {
        full.strip_prefix(self.ns.as_slice()).filter(|n| n.starts_with(b"refs/")).unwrap_or(full)
    }

    /// Whether a v0 advertisement would list nothing (then it shows only its capabilities).
    pub fn is_empty(&self) -> bool {
        let head = self.head().is_some() && !self.head_hidden;
        !head && self.entries().all(|e| e.is_ok_and(|e| e.hidden))
    }

    /// The value `e` peels to (git's `peel_iterated_oid`).
    pub fn peeled<'a>(&self, odb: &Odb, e: &Entry<'a>) -> Option<Id<'a>> {
        match e.peel {
            Peel::No => None,
            Peel::Stored(hex) if self.packed.as_ref().is_some_and(Packed::lowercase) => Some(Id::Hex(hex)),
            Peel::Stored(hex) => Some(Id::Parsed(packed::parse_hex(hex))),
            Peel::Lookup => peel_object(odb, &e.id.get()).map(Id::Parsed),
        }
    }

    /// HEAD if it leads to an id and is not hidden, then the visible refs, with their peeled
    /// values: what a v0 advertisement lists.
    pub fn advertised<'a>(&'a self, odb: &'a Odb) -> impl Iterator<Item = Result<Ref<'a>, RefsError>> + 'a {
        let head = self.head().filter(|_| !self.head_hidden).map(|(id, _)| {
            Ok(Ref { name: &b"HEAD"[..], id: id.into(), peeled: peel_object(odb, &id).map(Id::Parsed) })
        });
        let refs = self.entries().filter_map(move |e| match e {
            Ok(e) if e.hidden => None,
            Ok(e) => Some(Ok(Ref { name: e.name, id: e.id, peeled: self.peeled(odb, &e) })),
            Err(err) => Some(Err(err)),
        });
        head.into_iter().chain(refs)
    }

    /// Every id a client may name as an advertised tip: ref values and their peeled values.
    pub fn tips(&self, odb: &Odb) -> Result<gix::hashtable::HashSet<ObjectId>, RefsError> {
        let mut set = gix::hashtable::HashSet::default();
        for r in self.advertised(odb) {
            let r = r?;
            set.insert(r.id.get());
            set.extend(r.peeled.map(|p| p.get()));
        }
        Ok(set)
    }

    /// Values (and peeled values) of the hidden refs (HEAD included when it is hidden): never
    /// advertised, only for want policies.
    pub fn hidden_tips(&self, odb: &Odb) -> Result<Vec<ObjectId>, RefsError> {
        let mut out = Vec::new();
        if let Some((id, _)) = self.head().filter(|_| self.head_hidden) {
            out.push(id);
            out.extend(peel_object(odb, &id));
        }
        for e in self.entries() {
            let e = e?;
            if e.hidden {
                out.push(e.id.get());
                out.extend(self.peeled(odb, &e).map(|p| p.get()));
            }
        }
        Ok(out)
    }

    /// Annotated tags under `refs/tags/` (for `include-tag`).
    pub fn annotated_tags(&self, odb: &Odb) -> Result<Vec<ObjectId>, RefsError> {
        let mut out = Vec::new();
        for e in self.entries() {
            let e = e?;
            if !e.hidden && e.name.starts_with(b"refs/tags/") && self.peeled(odb, &e).is_some() {
                out.push(e.id.get());
            }
        }
        Ok(out)
    }

    /// The advertised ref called `name` (HEAD or a stripped name).
    pub fn find(&self, _odb: &Odb, name: &[u8]) -> Result<Option<ObjectId>, RefsError> {
        Ok(self.lookup(name))
    }

    /// The value of the visible ref `name` (without the namespace; `HEAD` too), looked up
    /// through the sorted stores: a binary search in the loose refs read and in `packed-refs`,
    /// never a scan of every ref (a request may name many). A loose ref wins over its packed
    /// copy, as in [`Refs::entries`]; refs outside the scope read are not found.
    pub fn lookup(&self, name: &[u8]) -> Option<ObjectId> {
        if name == b"HEAD" {
            return self.head().filter(|_| !self.head_hidden).map(|(id, _)| id);
        }
        let full = [&self.ns[..], name].concat();
        if !self.scope.matches(&full) || (!self.view.hide.is_empty() && self.view.is_hidden(name, &full)) {
            return None;
        }
        match self.loose.binary_search_by(|l| l.name.as_slice().cmp(&full)) {
            Ok(i) => Some(self.loose[i].id),
            Err(_) => {
                if !name::is_valid(&full, true) {
                    return None;
                }
                self.packed.as_ref().and_then(|p| p.find(&full))
            }
        }
    }
}

/// git's `peel_object`: what an annotated tag finally points at (the tags' `object` lines are
/// followed; the final object's existence is not checked), `None` for other objects and for
/// missing ones.
pub fn peel_object(odb: &Odb, id: &ObjectId) -> Option<ObjectId> {
    if id.is_null() || !matches!(odb.kind_of_tip(id), Ok(Some(Kind::Tag))) {
        return None;
    }
    let mut current = *id;
    // Ids are hashes, so a chain cannot loop; the bound is for a damaged repository.
    for _ in 0..1000 {
        match odb.tag_target(&current) {
            Ok((target, Kind::Tag)) => current = target,
            Ok((target, _)) => return Some(target),
            Err(_) => return None,
        }
    }
    None
}

/// The refs in scope, in name order (see [`Refs::entries`]).
pub struct Entries<'a> {
    refs: &'a Refs,
    /// The packed records still to walk.
    records: Option<packed::Records<'a>>,
    /// The next packed record in scope, read ahead to merge.
    pending: Option<packed::Record<'a>>,
    /// The next loose ref.
    loose: usize,
}

impl<'a> Entries<'a> {
    /// The next packed record in scope, skipping (by a binary search) to the next prefix when
    /// the walk leaves one.
    fn next_record(&mut self) -> Option<packed::Record<'a>> {
        if let Some(r) = self.pending.take() {
            return Some(r);
        }
        loop {
            let rec = self.records.as_mut()?.next()?;
            if self.refs.scope.matches(rec.name) {
                return Some(rec);
            }
            self.records = match (self.refs.scope.next_after(rec.name), &self.refs.packed) {
                (Some(next), Some(p)) => Some(p.records_from(next)),
                _ => None,
            };
        }
    }

    fn entry(
        &self,
        full: &'a [u8],
        id: Id<'a>,
        symref_target: Option<&'a [u8]>,
        peel: Peel<'a>,
    ) -> Entry<'a> {
        let refs = self.refs;
        let name = full.get(refs.ns.len()..).unwrap_or(full);
        let hidden = !refs.view.hide.is_empty() && refs.view.is_hidden(name, full);
        Entry { full, name, id, symref_target, peel, hidden }
    }

    fn packed_entry(&self, rec: packed::Record<'a>) -> Result<Entry<'a>, RefsError> {
        let full = rec.name;
        if !name::is_valid(full, true) {
            if !name::is_safe(full) {
                return Err(RefsError::PackedRefs(format!(
                    "packed refname is dangerous: {}",
                    gix::bstr::BStr::new(full)
                )));
            }
            let hash = if rec.hex.len() == 64 { gix::hash::Kind::Sha256 } else { gix::hash::Kind::Sha1 };
            return Ok(self.entry(full, ObjectId::null(hash).into(), None, Peel::No));
        }
        let peeled = self.refs.packed.as_ref().map_or(Peeled::None, Packed::peeled);
        let peel = match rec.peeled_hex {
            Some(hex) => Peel::Stored(hex),
            None if peeled == Peeled::Fully
                || (peeled == Peeled::Tags && full.starts_with(b"refs/tags/")) =>
            {
                Peel::No
            }
            None => Peel::Lookup,
        };
        let id = if self.refs.packed.as_ref().is_some_and(Packed::lowercase) {
            Id::Hex(rec.hex)
        } else {
            rec.id().into()
        };
        Ok(self.entry(full, id, None, peel))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, RefsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rec = self.next_record();
        let loose = self.refs.loose.get(self.loose);
        match (rec, loose) {
            (None, None) => None,
            (Some(rec), Some(l)) if rec.name < l.name.as_slice() => Some(self.packed_entry(rec)),
            (Some(rec), None) => Some(self.packed_entry(rec)),
            (rec, Some(l)) => {
                // The loose ref; its packed copy (same name) is passed over.
                if let Some(rec) = rec.filter(|r| r.name != l.name.as_slice()) {
                    self.pending = Some(rec);
                }
                self.loose += 1;
                let peel = if l.id.is_null() { Peel::No } else { Peel::Lookup };
                Some(Ok(self.entry(&l.name, l.id.into(), l.target.as_deref(), peel)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
