//! Object enumeration: everything reachable from the wants and not reachable from the common
//! commits, the way git's `rev-list --objects --objects-edge` decides it.
//!
//! Commits are walked in generation order (commit-graph) or date order, with git's
//! "uninteresting" propagation; the trees of the boundary commits (uninteresting parents of
//! sent commits) are marked as present on the client, which is what limits trees and blobs and
//! what a thin pack may use as delta bases.

use std::collections::BinaryHeap;

use gix::hash::{oid, ObjectId};
use gix::hashtable::{HashMap, HashSet};
use gix::objs::Kind;

use crate::odb::{EntryKind, Odb, OdbError};
pub use crate::pack::plan::Verbatim;
pub use crate::pack::writer::ThinBases;
use crate::select::filter::ObjectFilter;

/// Flags kept per object.
mod flag {
    /// The client has it (or it is behind the boundary).
    pub const UNINTERESTING: u8 = 1;
    /// It is in the list of objects to send.
    pub const SENT: u8 = 2;
    /// The walk has been here (it may have been filtered out).
    pub const SEEN: u8 = 4;
}

/// One object to send.
#[derive(Debug, Clone, Copy)]
pub struct Obj {
    /// Its id.
    pub id: ObjectId,
    /// Its type.
    pub kind: Kind,
    /// git's name hash of the path it was found at (0 for commits and tags), for delta search.
    pub name_hash: u32,
}

/// The result of a walk.
pub struct Selection<'a> {
    /// Objects to send: commits, then tags, trees and blobs in traversal order.
    pub objects: Vec<Obj>,
    flags: HashMap<ObjectId, u8>,
    /// Commits walked in total (both sides).
    pub commits_walked: usize,
    /// Trees and blobs of the boundary commits by name hash: the client has them, so a thin
    /// pack may use them as delta bases. At most [`THIN_CANDIDATES`] per name hash.
    pub thin_bases: ThinBases,
    /// Objects sent as one byte range from the start of a pack (not in `objects`).
    pub verbatim: Option<Verbatim>,
    /// Objects of [`Request::exclude`] that would have been sent and were left out.
    pub excluded: Vec<ObjectId>,
    /// Membership answers when the selection was computed elsewhere (bitmaps).
    membership: Option<Box<dyn Membership + 'a>>,
}

/// Answers for a selection computed without the walk's flag table (see [`super::bitmap`]).
pub trait Membership {
    /// Whether `id` is going to be sent.
    fn is_sent(&self, id: &oid) -> bool;
    /// Whether the client is known to have `id`.
    fn client_has(&self, id: &oid) -> bool;
}

/// How many client-side objects are remembered per name hash as thin delta bases.
pub const THIN_CANDIDATES: usize = 8;

impl<'a> Selection<'a> {
    /// A selection computed elsewhere (bitmaps), answering membership through `membership`.
    pub fn from_membership(
        objects: Vec<Obj>,
        commits_walked: usize,
        thin_bases: ThinBases,
        verbatim: Option<Verbatim>,
        membership: Box<dyn Membership + 'a>,
    ) -> Self {
        Selection {
            objects,
            flags: HashMap::default(),
            commits_walked,
            thin_bases,
            verbatim,
            excluded: Vec::new(),
            membership: Some(membership),
        }
    }

    /// Leaves the objects of `exclude` out (recording those that were in): they reach the
    /// client some other way. Answers "is it sent" with them left out from here on.
    pub fn exclude(&mut self, exclude: &[ObjectId]) {
        if exclude.is_empty() {
            return;
        }
        let excluded = &mut self.excluded;
        self.objects.retain(|o| {
            let out = exclude.contains(&o.id);
            if out {
                excluded.push(o.id);
            }
            !out
        });
    }

    /// Objects to send, the verbatim run included.
    pub fn len(&self) -> usize {
        self.objects.len() + self.verbatim.as_ref().map_or(0, |v| v.objects as usize)
    }

    /// Whether the selection was counted with reachability bitmaps.
    pub fn used_bitmap(&self) -> bool {
        self.membership.is_some()
    }

    /// Whether nothing is sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is going to be sent (not after [`Selection::forget_sent`] for a walk).
    pub fn is_sent(&self, id: &oid) -> bool {
        if !self.excluded.is_empty() && self.excluded.iter().any(|e| e.as_ref() == id) {
            return false;
        }
        if let Some(m) = &self.membership {
            return m.is_sent(id);
        }
        self.flags.get(id).is_some_and(|f| f & flag::SENT != 0)
    }

    /// Forgets which objects are sent, keeping only what the client has: once the list is
    /// planned, the plan answers "is it sent", and a clone's flag table (one entry per object)
    /// need not live while the pack is written. A bitmap selection is left as it is.
    pub fn forget_sent(&mut self) {
        if self.membership.is_none() {
            self.flags.retain(|_, f| *f & flag::UNINTERESTING != 0);
            self.flags.shrink_to_fit();
        }
    }

    /// Whether the client is known to have `id` (usable as a thin-pack base).
    pub fn client_has(&self, id: &oid) -> bool {
        if let Some(m) = &self.membership {
            return m.client_has(id);
        }
        self.flags.get(id).is_some_and(|f| f & flag::UNINTERESTING != 0)
    }
}

/// What to walk.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// Objects the client asked for (any type).
    pub wants: Vec<ObjectId>,
    /// Objects both sides have (normally commits).
    pub common: Vec<ObjectId>,
    /// Annotated tags to add when what they point at is sent (`include-tag`).
    pub include_tags: Vec<ObjectId>,
    /// Commits whose parents are not walked (the shallow boundary of this request).
    pub shallow: HashSet<ObjectId>,
    /// The partial clone filter, if any.
    pub filter: Option<ObjectFilter>,
    /// When counting with bitmaps: also find the client's versions of the changed paths, so
    /// that objects stored whole can be sent as thin deltas against them
    /// (`packserve.bitmapDeltaSearch`). The walk always finds them (its boundary gives them).
    pub bitmap_thin_bases: bool,
    /// Objects to leave out of the selection although they would be sent (the client gets them
    /// elsewhere); see [`Selection::excluded`]. No verbatim run is taken when there are any.
    pub exclude: Vec<ObjectId>,
}

/// The commits reachable from `include` but not from `exclude`, ignoring commits older than
/// `max_age` and everything below them: git's `rev-list <include> --not <exclude> --max-age=<t>`.
pub fn rev_list(
    odb: &Odb,
    include: &[ObjectId],
    exclude: &[ObjectId],
    max_age: Option<i64>,
    parentless: &HashSet<ObjectId>,
) -> Result<Vec<ObjectId>, OdbError> {
    let mut walk = CommitWalk::new(odb, parentless, max_age);
    for e in exclude {
        if let Ok((c, Kind::Commit)) = odb.peel(e) {
            walk.add(&c, true)?;
        }
    }
    for i in include {
        if let Ok((c, Kind::Commit)) = odb.peel(i) {
            walk.add(&c, false)?;
        }
    }
    let order = walk.run(&mut Ticker::new(&mut || {}))?;
    Ok(order
        .into_iter()
        .filter(|&i| walk.arena[i as usize].1.flags & flag::UNINTERESTING == 0)
        .map(|i| walk.arena[i as usize].0)
        .collect())
}

/// Errors of the walk.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Odb(#[from] OdbError),
}

#[derive(Clone, Copy)]
struct Node {
    flags: u8,
    in_queue: bool,
    processed: bool,
}

struct CommitWalk<'a> {
    odb: &'a Odb,
    /// Commits treated as having no parents (the shallow boundary of this request).
    parentless: &'a HashSet<ObjectId>,
    /// Commits older than this are uninteresting, and so is everything below them (`--max-age`).
    max_age: Option<i64>,
    nodes: HashMap<ObjectId, u32>,
    arena: Vec<(ObjectId, Node, Vec<u32>, ObjectId)>,
    queue: BinaryHeap<(u32, i64, std::cmp::Reverse<u64>, u32)>,
    seq: u64,
    interesting_in_queue: usize,
    /// Whether every commit seen so far has a generation number (commit-graph).
    all_generations: bool,
}

impl<'a> CommitWalk<'a> {
    fn new(odb: &'a Odb, parentless: &'a HashSet<ObjectId>, max_age: Option<i64>) -> Self {
        CommitWalk {
            odb,
            parentless,
            max_age,
            nodes: HashMap::default(),
            arena: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            interesting_in_queue: 0,
            all_generations: true,
        }
    }

    /// Adds a commit to the queue if it is new; returns its arena index, or None if it is missing
    /// and uninteresting (a have whose history we lack is no error).
    fn add(&mut self, id: &oid, uninteresting: bool) -> Result<Option<u32>, OdbError> {
        if let Some(&i) = self.nodes.get(id) {
            if uninteresting {
                self.mark_uninteresting(i)?;
            }
            return Ok(Some(i));
        }
        let info = match self.odb.commit(id) {
            Ok(info) => info,
            Err(OdbError::Missing(_)) if uninteresting => return Ok(None),
            Err(e) => return Err(e),
        };
        let i = self.arena.len() as u32;
        self.all_generations &= info.generation != u32::MAX;
        let node = Node {
            flags: if uninteresting { flag::UNINTERESTING } else { 0 },
            in_queue: true,
            processed: false,
        };
        self.arena.push((id.to_owned(), node, Vec::new(), info.tree));
        self.nodes.insert(id.to_owned(), i);
        self.seq += 1;
        self.queue.push((info.generation, info.time, std::cmp::Reverse(self.seq), i));
        if !uninteresting {
            self.interesting_in_queue += 1;
        }
        Ok(Some(i))
    }

    /// Marks a commit and everything below it that we already know as uninteresting.
    fn mark_uninteresting(&mut self, start: u32) -> Result<(), OdbError> {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let node = &mut self.arena[i as usize].1;
            if node.flags & flag::UNINTERESTING != 0 {
                continue;
            }
            node.flags |= flag::UNINTERESTING;
            if node.in_queue {
                self.interesting_in_queue -= 1;
            }
            if node.processed {
                stack.extend(self.arena[i as usize].2.iter().copied());
            }
        }
        Ok(())
    }

    fn run(&mut self, ticker: &mut Ticker<'_>) -> Result<Vec<u32>, OdbError> {
        let mut order = Vec::new();
        let mut slop = 5;
        let mut last_interesting_time = i64::MAX;
        while let Some((_, time, _, i)) = self.queue.pop() {
            ticker.tick();
            {
                let node = &mut self.arena[i as usize].1;
                node.in_queue = false;
                node.processed = true;
                if node.flags & flag::UNINTERESTING == 0 {
                    self.interesting_in_queue -= 1;
                }
            }
            if self.max_age.is_some_and(|m| time < m) {
                self.arena[i as usize].1.flags |= flag::UNINTERESTING;
            }
            let uninteresting = self.arena[i as usize].1.flags & flag::UNINTERESTING != 0;
            let id = self.arena[i as usize].0;
            let parents = if self.parentless.contains(&id) {
                Vec::new()
            } else {
                match self.odb.commit(&id) {
                    Ok(info) => info.parents,
                    Err(OdbError::Missing(_)) if uninteresting => Vec::new(),
                    Err(e) => return Err(e),
                }
            };
            let mut pidx = Vec::with_capacity(parents.len());
            for p in &parents {
                if let Some(pi) = self.add(p, uninteresting)? {
                    pidx.push(pi);
                }
            }
            self.arena[i as usize].2 = pidx;
            if !uninteresting {
                order.push(i);
                last_interesting_time = time;
            }
            if self.interesting_in_queue == 0 {
                if self.all_generations {
                    break;
                }
                let head_newer = self.queue.peek().is_some_and(|h| h.1 > last_interesting_time);
                if !head_newer {
                    slop -= 1;
                    if slop == 0 {
                        break;
                    }
                }
            } else {
                slop = 5;
            }
        }
        Ok(order)
    }
}

/// Calls a callback every so many steps of the walk (keep-alive packets while counting).
pub struct Ticker<'a> {
    f: &'a mut dyn FnMut(),
    n: u32,
}

impl<'a> Ticker<'a> {
    /// Wraps `f`.
    pub fn new(f: &'a mut dyn FnMut()) -> Self {
        Ticker { f, n: 0 }
    }

    fn tick(&mut self) {
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(1024) {
            (self.f)();
        }
    }
}

/// git's `pack_name_hash`: sorts similar file names together, weighting the last characters most.
pub fn name_hash(name: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    for &c in name {
        if c.is_ascii_whitespace() {
            continue;
        }
        hash = (hash >> 2).wrapping_add((c as u32) << 24);
    }
    hash
}

/// Walks from the wants, subtracting what is reachable from `common`.
pub fn enumerate(odb: &Odb, req: &Request, ticker: &mut Ticker<'_>) -> Result<Selection<'static>, WalkError> {
    let mut flags: HashMap<ObjectId, u8> = HashMap::default();
    let mut objects: Vec<Obj> = Vec::new();
    let mut walk = CommitWalk::new(odb, &req.shallow, None);
    let mut buf = Vec::new();
    let mut uninteresting_trees = Vec::new();
    let mut uninteresting_blobs = Vec::new();

    // The client's side first: only commits walk; trees and blobs it names are marked directly.
    for have in &req.common {
        let mut cur = *have;
        loop {
            match odb.kind(&cur)? {
                Some(Kind::Tag) => {
                    *flags.entry(cur).or_default() |= flag::UNINTERESTING;
                    cur = odb.tag_target(&cur)?.0;
                }
                Some(Kind::Commit) => {
                    walk.add(&cur, true)?;
                    break;
                }
                Some(Kind::Tree) => {
                    uninteresting_trees.push(cur);
                    break;
                }
                Some(Kind::Blob) => {
                    uninteresting_blobs.push(cur);
                    break;
                }
                None => break,
            }
        }
    }

    // The wants: tags are sent and peeled, commits walked, trees and blobs queued.
    let mut pending_trees: Vec<ObjectId> = Vec::new();
    let mut pending_blobs: Vec<ObjectId> = Vec::new();
    let mut tags: Vec<ObjectId> = Vec::new();
    // What the client named, and what its tags point at, is never filtered out.
    let mut explicit: HashSet<ObjectId> = HashSet::default();
    for want in &req.wants {
        let mut cur = *want;
        loop {
            explicit.insert(cur);
            match odb.kind(&cur)?.ok_or(OdbError::Missing(cur))? {
                Kind::Tag => {
                    tags.push(cur);
                    cur = odb.tag_target(&cur)?.0;
                }
                Kind::Commit => {
                    walk.add(&cur, false)?;
                    break;
                }
                Kind::Tree => {
                    pending_trees.push(cur);
                    break;
                }
                Kind::Blob => {
                    pending_blobs.push(cur);
                    break;
                }
            }
        }
    }

    let order = walk.run(ticker)?;
    let commits_walked = walk.arena.len();

    // Boundary: uninteresting parents of the commits we send. Their trees are on the client.
    // For shallow requests git goes further (`--objects-edge-aggressive`): the trees of every
    // uninteresting commit the client named are on the client too.
    if !req.shallow.is_empty() {
        for c in &req.common {
            if let Some(&i) = walk.nodes.get(c) {
                let (id, node, _, tree) = &walk.arena[i as usize];
                if node.flags & flag::UNINTERESTING != 0 {
                    uninteresting_trees.push(*tree);
                    *flags.entry(*id).or_default() |= flag::UNINTERESTING;
                }
            }
        }
    }
    for &i in &order {
        for &p in &walk.arena[i as usize].2 {
            let (pid, pnode, _, ptree) = &walk.arena[p as usize];
            if pnode.flags & flag::UNINTERESTING != 0 {
                uninteresting_trees.push(*ptree);
                *flags.entry(*pid).or_default() |= flag::UNINTERESTING;
            }
        }
    }
    for (id, node, _, _) in &walk.arena {
        if node.flags & flag::UNINTERESTING != 0 {
            *flags.entry(*id).or_default() |= flag::UNINTERESTING;
        }
    }
    for b in uninteresting_blobs {
        *flags.entry(b).or_default() |= flag::UNINTERESTING;
    }
    let mut thin_bases = std::collections::HashMap::new();
    mark_trees_uninteresting(odb, &mut flags, &mut thin_bases, uninteresting_trees, &mut buf, ticker)?;

    // What we send: commits, tags, then trees and blobs.
    let filter = req.filter.as_ref();
    let keeps_plain = |kind: Kind| filter.is_none_or(|f| f.filter.keeps(kind, 0, 0, &|| true));
    let mut roots = Vec::with_capacity(order.len());
    for &i in &order {
        let (id, node, _, tree) = &walk.arena[i as usize];
        if node.flags & flag::UNINTERESTING != 0 {
            continue;
        }
        if keeps_plain(Kind::Commit) || explicit.contains(id) {
            flags.insert(*id, flag::SENT);
            objects.push(Obj { id: *id, kind: Kind::Commit, name_hash: 0 });
        }
        roots.push((*tree, false));
    }
    drop(walk);
    for t in tags {
        let f = flags.entry(t).or_default();
        if *f & (flag::SENT | flag::UNINTERESTING) == 0 {
            *f |= flag::SENT;
            objects.push(Obj { id: t, kind: Kind::Tag, name_hash: 0 });
        }
    }
    roots.extend(pending_trees.into_iter().map(|t| (t, true)));
    let mut trees = TreeWalk { odb, filter, min_depth: HashMap::default(), buf: &mut buf };
    for (root, explicit) in roots {
        trees.add(&mut flags, &mut objects, root, explicit, ticker)?;
    }
    for b in pending_blobs {
        let f = flags.entry(b).or_default();
        if *f & (flag::SENT | flag::UNINTERESTING) == 0 {
            *f |= flag::SENT;
            objects.push(Obj { id: b, kind: Kind::Blob, name_hash: 0 });
        }
    }

    // include-tag: annotated tags whose target ends up in the pack.
    for &tag in &req.include_tags {
        if flags.get(&tag).is_some_and(|f| f & (flag::SENT | flag::UNINTERESTING) != 0) {
            continue;
        }
        let mut chain = vec![tag];
        let mut cur = tag;
        let mut depth = 0;
        let peeled = loop {
            match odb.tag_target(&cur) {
                Ok((target, Kind::Tag)) => {
                    depth += 1;
                    if depth > 100 {
                        break None;
                    }
                    chain.push(target);
                    cur = target;
                }
                Ok((target, _)) => break Some(target),
                Err(_) => break None,
            }
        };
        if peeled.is_some_and(|p| flags.get(&p).is_some_and(|f| f & flag::SENT != 0)) {
            for t in chain {
                let f = flags.entry(t).or_default();
                if *f & (flag::SENT | flag::UNINTERESTING) == 0 {
                    *f |= flag::SENT;
                    objects.push(Obj { id: t, kind: Kind::Tag, name_hash: 0 });
                }
            }
        }
    }

    Ok(Selection {
        objects,
        flags,
        commits_walked,
        thin_bases,
        verbatim: None,
        excluded: Vec::new(),
        membership: None,
    })
}

fn mark_trees_uninteresting(
    odb: &Odb,
    flags: &mut HashMap<ObjectId, u8>,
    thin_bases: &mut ThinBases,
    roots: Vec<ObjectId>,
    buf: &mut Vec<u8>,
    ticker: &mut Ticker<'_>,
) -> Result<(), OdbError> {
    let mut remember = |hash: u32, id: &oid, kind: Kind| {
        let v = thin_bases.entry(hash).or_default();
        if v.len() < THIN_CANDIDATES && !v.iter().any(|(x, _)| x.as_ref() == id) {
            v.push((id.to_owned(), kind));
        }
    };
    let mut stack: Vec<(ObjectId, u32)> = roots.into_iter().map(|r| (r, 0)).collect();
    while let Some((t, hash)) = stack.pop() {
        ticker.tick();
        let f = flags.entry(t).or_default();
        if *f & flag::UNINTERESTING != 0 {
            continue;
        }
        *f |= flag::UNINTERESTING;
        remember(hash, &t, Kind::Tree);
        let res = odb.for_each_tree_entry(&t, buf, |kind, name, id| match kind {
            EntryKind::Tree => stack.push((id.to_owned(), name_hash(name))),
            EntryKind::Blob => {
                let f = flags.entry(id.to_owned()).or_default();
                if *f & flag::UNINTERESTING == 0 {
                    *f |= flag::UNINTERESTING;
                    remember(name_hash(name), id, Kind::Blob);
                }
            }
            EntryKind::Commit => {}
        });
        match res {
            // The client's side may be incomplete here (e.g. behind a shallow boundary).
            Err(OdbError::Missing(_)) => {}
            other => other?,
        }
    }
    Ok(())
}

/// The tree part of the walk, with the filter's decisions.
struct TreeWalk<'a, 'b> {
    odb: &'a Odb,
    filter: Option<&'a ObjectFilter>,
    /// For depth filters: the smallest depth each tree was walked at (git re-walks a tree seen
    /// again closer to the root).
    min_depth: HashMap<ObjectId, u64>,
    buf: &'b mut Vec<u8>,
}

impl TreeWalk<'_, '_> {
    fn add(
        &mut self,
        flags: &mut HashMap<ObjectId, u8>,
        objects: &mut Vec<Obj>,
        root: ObjectId,
        explicit: bool,
        ticker: &mut Ticker<'_>,
    ) -> Result<(), OdbError> {
        let depth_limit = self.filter.and_then(|f| f.filter.depth_limit());
        let sparse = self.filter.and_then(|f| f.sparse.as_ref());
        // (tree, depth, name hash, path)
        let mut stack: Vec<(ObjectId, u64, u32, Vec<u8>)> = vec![(root, 0, 0, Vec::new())];
        while let Some((t, depth, hash, path)) = stack.pop() {
            ticker.tick();
            let f = flags.entry(t).or_default();
            if *f & flag::UNINTERESTING != 0 {
                continue;
            }
            if depth_limit.is_some() {
                if self.min_depth.get(&t).is_some_and(|&d| d <= depth) {
                    continue;
                }
                self.min_depth.insert(t, depth);
            } else if *f & flag::SEEN != 0 {
                continue;
            }
            *f |= flag::SEEN;
            let keep = (explicit && depth == 0)
                || self.filter.is_none_or(|fl| fl.filter.keeps(Kind::Tree, depth, 0, &|| true));
            if keep && *f & flag::SENT == 0 {
                *f |= flag::SENT;
                objects.push(Obj { id: t, kind: Kind::Tree, name_hash: hash });
            }
            if depth_limit.is_some_and(|l| depth >= l) {
                continue;
            }
            let mut subtrees = Vec::new();
            let mut blobs = Vec::new();
            self.odb.for_each_tree_entry(&t, self.buf, |kind, name, id| match kind {
                EntryKind::Tree => {
                    subtrees.push((id.to_owned(), name_hash(name), join(&path, name, sparse.is_some())))
                }
                EntryKind::Blob => {
                    blobs.push((id.to_owned(), name_hash(name), join(&path, name, sparse.is_some())))
                }
                EntryKind::Commit => {}
            })?;
            for (id, h, bpath) in blobs {
                let f = flags.entry(id).or_default();
                if *f & (flag::SENT | flag::UNINTERESTING) != 0 {
                    continue;
                }
                let keep = match self.filter {
                    None => true,
                    Some(fl) => {
                        let size =
                            if fl.filter.needs_blob_size() { self.odb.size(&id)?.unwrap_or(0) } else { 0 };
                        fl.filter
                            .keeps(Kind::Blob, depth + 1, size, &|| sparse.is_none_or(|s| s.keeps(&bpath)))
                    }
                };
                let f = flags.entry(id).or_default();
                *f |= flag::SEEN;
                if keep {
                    *f |= flag::SENT;
                    objects.push(Obj { id, kind: Kind::Blob, name_hash: h });
                }
            }
            // Reverse so the first subtree is walked first.
            stack.extend(subtrees.into_iter().rev().map(|(id, h, p)| (id, depth + 1, h, p)));
        }
        Ok(())
    }
}

/// `path/name` when paths are tracked (sparse filters), else nothing.
fn join(path: &[u8], name: &[u8], track: bool) -> Vec<u8> {
    if !track {
        return Vec::new();
    }
    let mut p = Vec::with_capacity(path.len() + name.len() + 1);
    if !path.is_empty() {
        p.extend_from_slice(path);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_matches_git() {
        // git: hash = (hash >> 2) + (c << 24), skipping whitespace.
        assert_eq!(name_hash(b""), 0);
        assert_eq!(name_hash(b"a"), (b'a' as u32) << 24);
        let h1 = (b'a' as u32) << 24;
        let h2 = (h1 >> 2).wrapping_add((b'b' as u32) << 24);
        assert_eq!(name_hash(b"ab"), h2);
        assert_eq!(name_hash(b"a b"), h2);
    }
}
