//! Object enumeration: everything reachable from the wants and not reachable from the common
//! commits, the way git's `rev-list --objects --objects-edge` decides it.
//!
//! Commits are walked in generation order (commit-graph) or date order, with git's
//! "uninteresting" propagation; the trees of the boundary commits (uninteresting parents of
//! sent commits) are marked as present on the client, which is what limits trees and blobs and
//! what a thin pack may use as delta bases.
//!
//! Everything is kept by number, not by id: commits by their commit-graph position (a side
//! table holds those outside the graph), trees and blobs by object number
//! ([`crate::pack::ObjNum`]), so the flags are bit sets and nothing per object is a hash-map
//! entry.

use std::collections::BinaryHeap;

use gix::hash::{oid, ObjectId};
use gix::hashtable::{HashMap, HashSet};
use gix::objs::Kind;

use crate::bits::Bits;
use crate::odb::{EntryKind, Odb, OdbError};
pub use crate::pack::plan::Verbatim;
pub use crate::pack::writer::ThinBases;
use crate::pack::ObjNum;
use crate::select::filter::ObjectFilter;

/// What the client is known to have, by object number, however the selection was counted.
pub trait ClientHas {
    /// Whether the client has object number `num` (usable as a thin-pack base).
    fn has(&self, num: ObjNum) -> bool;
}

impl ClientHas for Bits {
    fn has(&self, num: ObjNum) -> bool {
        self.get(num as usize)
    }
}

/// The result of counting, by object number.
pub struct Selection<'a> {
    /// Objects to send (the verbatim run's are not in it).
    pub sent: Bits,
    /// How many bits of `sent` are set.
    pub count: usize,
    /// git's name hash of the path each sent tree or blob was found at (0 for commits, tags
    /// and unknown paths), by object number; shorter than the highest number when the rest are 0.
    pub name_hashes: Vec<u32>,
    /// What the client has.
    pub client: Box<dyn ClientHas + 'a>,
    /// Commits walked in total (both sides).
    pub commits_walked: usize,
    /// Trees and blobs of the boundary commits by name hash: the client has them, so a thin
    /// pack may use them as delta bases. At most [`THIN_CANDIDATES`] per name hash.
    pub thin_bases: ThinBases,
    /// Objects sent as one byte range from the start of a pack (not in `sent`).
    pub verbatim: Option<Verbatim>,
    /// Whether reachability bitmaps did the counting.
    pub used_bitmap: bool,
    /// Objects of [`Request::exclude`] that would have been sent and were left out.
    pub excluded: Vec<ObjectId>,
}

/// How many client-side objects are remembered per name hash as thin delta bases.
pub const THIN_CANDIDATES: usize = 8;

impl Selection<'_> {
    /// Leaves the objects of `exclude` out (recording those that were in): they reach the
    /// client some other way. The verbatim run must not be used with exclusions.
    pub fn exclude(&mut self, odb: &Odb, exclude: &[ObjectId]) {
        for id in exclude {
            if let Some(n) = odb.num(id) {
                if self.sent.get(n as usize) {
                    self.sent.clear(n as usize);
                    self.count -= 1;
                    self.excluded.push(*id);
                }
            }
        }
    }

    /// Objects to send, the verbatim run included.
    pub fn len(&self) -> usize {
        self.count + self.verbatim.as_ref().map_or(0, |v| v.objects as usize)
    }

    /// Whether nothing is sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the selection was counted with reachability bitmaps.
    pub fn used_bitmap(&self) -> bool {
        self.used_bitmap
    }

    /// The name hash of a sent object.
    pub fn name_hash(&self, num: ObjNum) -> u32 {
        self.name_hashes.get(num as usize).copied().unwrap_or(0)
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
            walk.add_id(&c, true)?;
        }
    }
    for i in include {
        if let Ok((c, Kind::Commit)) = odb.peel(i) {
            walk.add_id(&c, false)?;
        }
    }
    let order = walk.run(&mut Ticker::new(&mut || {}))?;
    Ok(order.into_iter().map(|i| walk.id(i)).collect())
}

/// Errors of the walk.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Odb(#[from] OdbError),
}

/// Node flags of the commit walk.
mod node {
    pub const UNINTERESTING: u8 = 1;
    pub const IN_QUEUE: u8 = 2;
    pub const PROCESSED: u8 = 4;
    /// The key is an index into the side table, not a commit-graph position.
    pub const EXTRA: u8 = 8;
}

/// One commit met by the walk.
#[derive(Clone, Copy)]
struct Node {
    /// Commit-graph position, or index into [`CommitWalk::extra`] with [`node::EXTRA`].
    key: u32,
    flags: u8,
    /// Its parents (arena indices) are `parents[at..at + len]`, once processed.
    parents_at: u32,
    parents_len: u32,
}

/// A commit outside the commit-graph.
struct ExtraCommit {
    id: ObjectId,
    tree: ObjectId,
    parents: Vec<ObjectId>,
}

/// Where a commit is found.
#[derive(Clone, Copy)]
enum Key<'o> {
    Graph(u32),
    Id(&'o oid),
}

struct CommitWalk<'a> {
    odb: &'a Odb,
    graph: Option<&'a gix::commitgraph::Graph>,
    /// Commits treated as having no parents (the shallow boundary of this request).
    parentless: &'a HashSet<ObjectId>,
    /// Commits older than this are uninteresting, and so is everything below them (`--max-age`).
    max_age: Option<i64>,
    /// Arena index + 1 of each commit-graph position met (0: not met).
    by_position: Vec<u32>,
    /// Arena index of each commit outside the graph met.
    by_id: HashMap<ObjectId, u32>,
    extra: Vec<ExtraCommit>,
    arena: Vec<Node>,
    parents: Vec<u32>,
    queue: BinaryHeap<(u32, i64, std::cmp::Reverse<u64>, u32)>,
    seq: u64,
    interesting_in_queue: usize,
    /// Whether every commit seen so far has a generation number (commit-graph).
    all_generations: bool,
}

impl<'a> CommitWalk<'a> {
    fn new(odb: &'a Odb, parentless: &'a HashSet<ObjectId>, max_age: Option<i64>) -> Self {
        let graph = odb.graph();
        CommitWalk {
            odb,
            graph,
            parentless,
            max_age,
            by_position: Vec::new(),
            by_id: HashMap::default(),
            extra: Vec::new(),
            arena: Vec::new(),
            parents: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            interesting_in_queue: 0,
            all_generations: true,
        }
    }

    fn key_of<'o>(&self, id: &'o oid) -> Key<'o> {
        match self.graph.and_then(|g| g.lookup(id)) {
            Some(p) => Key::Graph(p.0),
            None => Key::Id(id),
        }
    }

    fn add_id(&mut self, id: &oid, uninteresting: bool) -> Result<Option<u32>, OdbError> {
        let key = self.key_of(id);
        self.add(key, uninteresting)
    }

    /// Adds a commit to the queue if it is new; returns its arena index, or None if it is missing
    /// and uninteresting (a have whose history we lack is no error).
    fn add(&mut self, key: Key<'_>, uninteresting: bool) -> Result<Option<u32>, OdbError> {
        let known = match key {
            Key::Graph(p) => self.by_position.get(p as usize).copied().filter(|&i| i != 0).map(|i| i - 1),
            Key::Id(id) => self.by_id.get(id).copied(),
        };
        if let Some(i) = known {
            if uninteresting {
                self.mark_uninteresting(i);
            }
            return Ok(Some(i));
        }
        let i = self.arena.len() as u32;
        let (node_key, extra_flag, generation, time) = match key {
            Key::Graph(p) => {
                let Some(g) = self.graph else { return Ok(None) };
                let c = g.commit_at(gix::commitgraph::Position(p));
                if self.by_position.is_empty() {
                    self.by_position = vec![0; g.num_commits() as usize];
                }
                self.by_position[p as usize] = i + 1;
                (p, 0, c.generation(), c.committer_timestamp() as i64)
            }
            Key::Id(id) => {
                let info = match self.odb.commit(id) {
                    Ok(info) => info,
                    Err(OdbError::Missing(_)) if uninteresting => return Ok(None),
                    Err(e) => return Err(e),
                };
                let x = self.extra.len() as u32;
                self.extra.push(ExtraCommit { id: id.to_owned(), tree: info.tree, parents: info.parents });
                self.by_id.insert(id.to_owned(), i);
                (x, node::EXTRA, info.generation, info.time)
            }
        };
        self.all_generations &= generation != u32::MAX;
        let flags = node::IN_QUEUE | extra_flag | if uninteresting { node::UNINTERESTING } else { 0 };
        self.arena.push(Node { key: node_key, flags, parents_at: 0, parents_len: 0 });
        self.seq += 1;
        self.queue.push((generation, time, std::cmp::Reverse(self.seq), i));
        if !uninteresting {
            self.interesting_in_queue += 1;
        }
        Ok(Some(i))
    }

    /// The id of the commit at arena index `i`.
    fn id(&self, i: u32) -> ObjectId {
        let n = self.arena[i as usize];
        if n.flags & node::EXTRA != 0 {
            self.extra[n.key as usize].id
        } else {
            self.graph.map_or_else(
                || ObjectId::null(self.odb.hash_kind()),
                |g| g.id_at(gix::commitgraph::Position(n.key)).to_owned(),
            )
        }
    }

    /// The root tree of the commit at arena index `i`.
    fn tree(&self, i: u32) -> ObjectId {
        let n = self.arena[i as usize];
        if n.flags & node::EXTRA != 0 {
            self.extra[n.key as usize].tree
        } else {
            self.graph.map_or_else(
                || ObjectId::null(self.odb.hash_kind()),
                |g| g.commit_at(gix::commitgraph::Position(n.key)).root_tree_id().to_owned(),
            )
        }
    }

    fn is_uninteresting(&self, i: u32) -> bool {
        self.arena[i as usize].flags & node::UNINTERESTING != 0
    }

    /// Marks a commit and everything below it that we already know as uninteresting.
    fn mark_uninteresting(&mut self, start: u32) {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let node = &mut self.arena[i as usize];
            if node.flags & node::UNINTERESTING != 0 {
                continue;
            }
            node.flags |= node::UNINTERESTING;
            if node.flags & node::IN_QUEUE != 0 {
                self.interesting_in_queue -= 1;
            }
            if node.flags & node::PROCESSED != 0 {
                let (at, len) = (node.parents_at as usize, node.parents_len as usize);
                stack.extend_from_slice(&self.parents[at..at + len]);
            }
        }
    }

    /// Whether the commit at `i` is walked without its parents: the request's shallow boundary,
    /// or a shallow commit of the repository itself.
    fn cut_here(&self, i: u32) -> bool {
        if self.parentless.is_empty() && self.odb.shallow().is_empty() {
            return false;
        }
        let id = self.id(i);
        self.parentless.contains(&id) || self.odb.shallow().contains(&id)
    }

    fn run(&mut self, ticker: &mut Ticker<'_>) -> Result<Vec<u32>, OdbError> {
        let mut order = Vec::new();
        let mut slop = 5;
        let mut last_interesting_time = i64::MAX;
        let mut parent_keys: Vec<(bool, u32)> = Vec::new();
        while let Some((_, time, _, i)) = self.queue.pop() {
            ticker.tick();
            {
                let node = &mut self.arena[i as usize];
                node.flags = (node.flags & !node::IN_QUEUE) | node::PROCESSED;
                if node.flags & node::UNINTERESTING == 0 {
                    self.interesting_in_queue -= 1;
                }
            }
            if self.max_age.is_some_and(|m| time < m) {
                self.arena[i as usize].flags |= node::UNINTERESTING;
            }
            let uninteresting = self.is_uninteresting(i);
            // The parents, as (in graph, graph position or index into the side table's parents).
            parent_keys.clear();
            let node = self.arena[i as usize];
            if !self.cut_here(i) {
                if node.flags & node::EXTRA != 0 {
                    let x = node.key as usize;
                    for (k, p) in self.extra[x].parents.iter().enumerate() {
                        match self.graph.and_then(|g| g.lookup(p)) {
                            Some(pos) => parent_keys.push((true, pos.0)),
                            None => parent_keys.push((false, k as u32)),
                        }
                    }
                } else if let Some(g) = self.graph {
                    let c = g.commit_at(gix::commitgraph::Position(node.key));
                    for p in c.iter_parents() {
                        let p =
                            p.map_err(|e| OdbError::Corrupt { id: self.id(i), message: e.to_string() })?;
                        parent_keys.push((true, p.0));
                    }
                }
            }
            let at = self.parents.len() as u32;
            for &(in_graph, v) in &parent_keys {
                let added = if in_graph {
                    self.add(Key::Graph(v), uninteresting)?
                } else {
                    let id = self.extra[node.key as usize].parents[v as usize];
                    self.add(Key::Id(&id), uninteresting)?
                };
                if let Some(pi) = added {
                    self.parents.push(pi);
                }
            }
            let n = &mut self.arena[i as usize];
            n.parents_at = at;
            n.parents_len = self.parents.len() as u32 - at;
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
        // Commits marked uninteresting after they were listed are not sent.
        order.retain(|&i| !self.is_uninteresting(i));
        Ok(order)
    }

    /// The parents (arena indices) of a processed commit.
    fn parents_of(&self, i: u32) -> &[u32] {
        let n = &self.arena[i as usize];
        &self.parents[n.parents_at as usize..(n.parents_at + n.parents_len) as usize]
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

    /// Counts one step.
    pub fn tick(&mut self) {
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(1024) {
            (self.f)();
        }
    }
}

/// git's `pack_name_hash`: sorts similar file names together, weighting the last characters most.
pub fn name_hash(name: &[u8]) -> u32 {
    name_hash_continue(0, name)
}

/// The name hash of a path that continues with `more` after a path whose hash is `hash`: the
/// hash is a left fold over the characters, so `dir/name` is hashed without building it.
pub fn name_hash_continue(mut hash: u32, more: &[u8]) -> u32 {
    for &c in more {
        if c.is_ascii_whitespace() {
            continue;
        }
        hash = (hash >> 2).wrapping_add((c as u32) << 24);
    }
    hash
}

/// The name hash of `name` inside a directory whose path hashes to `dir` (the root's is 0 and
/// has no slash).
pub(crate) fn child_hash(dir: u32, at_root: bool, name: &[u8]) -> u32 {
    let h = if at_root { dir } else { name_hash_continue(dir, b"/") };
    name_hash_continue(h, name)
}

/// The walk's flags, by object number.
#[derive(Default)]
struct Flags {
    /// The client has it (or it is behind the boundary).
    uninteresting: Bits,
    /// It is going to be sent.
    sent: Bits,
    /// The walk has been here (it may have been filtered out).
    seen: Bits,
    sent_count: usize,
    name_hashes: Vec<u32>,
}

impl Flags {
    fn new(odb: &Odb) -> Self {
        let n = odb.num_end() as usize;
        Flags {
            uninteresting: Bits::with_len(n),
            sent: Bits::with_len(n),
            seen: Bits::with_len(n),
            sent_count: 0,
            name_hashes: Vec::new(),
        }
    }

    /// Marks `num` as sent (if it is neither sent nor on the client's side); whether it was.
    fn send(&mut self, num: ObjNum, name_hash: u32) -> bool {
        let n = num as usize;
        if self.uninteresting.get(n) || self.sent.test_and_set(n) {
            return false;
        }
        self.sent_count += 1;
        set_name_hash(&mut self.name_hashes, num, name_hash, self.sent.words().len() * 64);
        true
    }
}

/// Records the name hash of object `num` in a table by number. The table is allocated zeroed
/// for `expected` numbers at once (pages never written stay unmapped, so a fetch that sends a
/// few objects of a big repository costs a few pages), and grows by copying into a new zeroed
/// table past that.
pub(crate) fn set_name_hash(table: &mut Vec<u32>, num: ObjNum, hash: u32, expected: usize) {
    if hash == 0 {
        return;
    }
    let n = num as usize;
    if table.len() <= n {
        let mut grown = vec![0u32; (n + 1).max(table.len() * 2).max(expected)];
        grown[..table.len()].copy_from_slice(table);
        *table = grown;
    }
    table[n] = hash;
}

/// Walks from the wants, subtracting what is reachable from `common`.
pub fn enumerate(odb: &Odb, req: &Request, ticker: &mut Ticker<'_>) -> Result<Selection<'static>, WalkError> {
    let mut flags = Flags::new(odb);
    let mut walk = CommitWalk::new(odb, &req.shallow, None);
    let mut buf = Vec::new();
    let mut uninteresting_trees: Vec<ObjNum> = Vec::new();

    // The client's side first: only commits walk; trees and blobs it names are marked directly.
    for have in &req.common {
        let mut cur = *have;
        loop {
            match odb.kind(&cur)? {
                Some(Kind::Tag) => {
                    flags.uninteresting.set(odb.num_or_add(&cur) as usize);
                    cur = odb.tag_target(&cur)?.0;
                }
                Some(Kind::Commit) => {
                    walk.add_id(&cur, true)?;
                    break;
                }
                Some(Kind::Tree) => {
                    uninteresting_trees.push(odb.num_or_add(&cur));
                    break;
                }
                Some(Kind::Blob) => {
                    flags.uninteresting.set(odb.num_or_add(&cur) as usize);
                    break;
                }
                None => break,
            }
        }
    }

    // The wants: tags are sent and peeled, commits walked, trees and blobs queued.
    let mut pending_trees: Vec<ObjNum> = Vec::new();
    let mut pending_blobs: Vec<ObjNum> = Vec::new();
    let mut tags: Vec<ObjNum> = Vec::new();
    // What the client named, and what its tags point at, is never filtered out.
    let mut explicit: HashSet<ObjectId> = HashSet::default();
    for want in &req.wants {
        let mut cur = *want;
        loop {
            explicit.insert(cur);
            match odb.kind(&cur)?.ok_or(OdbError::Missing(cur))? {
                Kind::Tag => {
                    tags.push(odb.num_or_add(&cur));
                    cur = odb.tag_target(&cur)?.0;
                }
                Kind::Commit => {
                    walk.add_id(&cur, false)?;
                    break;
                }
                Kind::Tree => {
                    pending_trees.push(odb.num_or_add(&cur));
                    break;
                }
                Kind::Blob => {
                    pending_blobs.push(odb.num_or_add(&cur));
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
    let mut boundary: Vec<u32> = Vec::new();
    if !req.shallow.is_empty() {
        for c in &req.common {
            let known = match walk.key_of(c) {
                Key::Graph(p) => walk.by_position.get(p as usize).copied().filter(|&i| i != 0).map(|i| i - 1),
                Key::Id(id) => walk.by_id.get(id).copied(),
            };
            if let Some(i) = known.filter(|&i| walk.is_uninteresting(i)) {
                boundary.push(i);
            }
        }
    }
    for &i in &order {
        boundary.extend(walk.parents_of(i).iter().copied().filter(|&p| walk.is_uninteresting(p)));
    }
    boundary.sort_unstable();
    boundary.dedup();
    for &i in &boundary {
        uninteresting_trees.push(odb.num_or_add(&walk.tree(i)));
    }
    // Every uninteresting commit met is on the client (include-tag and thin bases ask).
    for i in 0..walk.arena.len() as u32 {
        if walk.is_uninteresting(i) {
            flags.uninteresting.set(odb.num_or_add(&walk.id(i)) as usize);
        }
    }
    let mut thin_bases = ThinBases::new();
    mark_trees_uninteresting(odb, &mut flags, &mut thin_bases, uninteresting_trees, &mut buf, ticker)?;

    // What we send: commits, tags, then trees and blobs.
    let filter = req.filter.as_ref();
    let keeps_plain = |kind: Kind| filter.is_none_or(|f| f.filter.keeps(kind, 0, 0, &|| true));
    let keep_commits = keeps_plain(Kind::Commit);
    let mut roots: Vec<(ObjNum, bool)> = Vec::with_capacity(order.len());
    for &i in &order {
        let id = walk.id(i);
        if keep_commits || explicit.contains(&id) {
            flags.send(odb.num_or_add(&id), 0);
        }
        roots.push((odb.num_or_add(&walk.tree(i)), false));
    }
    drop(walk);
    for t in tags {
        flags.send(t, 0);
    }
    roots.extend(pending_trees.into_iter().map(|t| (t, true)));
    let mut trees = TreeWalk { odb, filter, min_depth: std::collections::HashMap::new(), buf: &mut buf };
    for (root, explicit) in roots {
        trees.add(&mut flags, root, explicit, ticker)?;
    }
    for b in pending_blobs {
        flags.send(b, 0);
    }

    // include-tag: annotated tags whose target ends up in the pack.
    for &tag in &req.include_tags {
        let tnum = odb.num_or_add(&tag);
        if flags.sent.get(tnum as usize) || flags.uninteresting.get(tnum as usize) {
            continue;
        }
        let mut chain = vec![tnum];
        let mut cur = tag;
        let mut depth = 0;
        let peeled = loop {
            match odb.tag_target(&cur) {
                Ok((target, Kind::Tag)) => {
                    depth += 1;
                    if depth > 100 {
                        break None;
                    }
                    chain.push(odb.num_or_add(&target));
                    cur = target;
                }
                Ok((target, _)) => break Some(target),
                Err(_) => break None,
            }
        };
        if peeled.and_then(|p| odb.num(&p)).is_some_and(|p| flags.sent.get(p as usize)) {
            for t in chain {
                flags.send(t, 0);
            }
        }
    }

    let Flags { uninteresting, sent, sent_count, name_hashes, .. } = flags;
    Ok(Selection {
        sent,
        count: sent_count,
        name_hashes,
        client: Box::new(uninteresting),
        commits_walked,
        thin_bases,
        verbatim: None,
        used_bitmap: false,
        excluded: Vec::new(),
    })
}

fn mark_trees_uninteresting(
    odb: &Odb,
    flags: &mut Flags,
    thin_bases: &mut ThinBases,
    roots: Vec<ObjNum>,
    buf: &mut Vec<u8>,
    ticker: &mut Ticker<'_>,
) -> Result<(), OdbError> {
    let mut remember = |hash: u32, num: ObjNum, kind: Kind| {
        let v = thin_bases.entry(hash).or_default();
        if v.len() < THIN_CANDIDATES && !v.iter().any(|&(x, _)| x == num) {
            v.push((num, kind));
        }
    };
    // (tree, name hash of its path, whether it is a root)
    let mut stack: Vec<(ObjNum, u32, bool)> = roots.into_iter().map(|r| (r, 0, true)).collect();
    while let Some((t, hash, root)) = stack.pop() {
        ticker.tick();
        if flags.uninteresting.test_and_set(t as usize) {
            continue;
        }
        remember(hash, t, Kind::Tree);
        let res = odb.for_each_tree_entry_num(t, buf, |kind, name, id| {
            let num = match kind {
                EntryKind::Commit => return,
                _ => odb.num_or_add(id),
            };
            let x = num as usize;
            match kind {
                EntryKind::Tree => {
                    if !flags.uninteresting.get(x) {
                        stack.push((num, child_hash(hash, root, name), false));
                    }
                }
                _ => {
                    if !flags.uninteresting.test_and_set(x) {
                        remember(child_hash(hash, root, name), num, Kind::Blob);
                    }
                }
            }
        });
        match res {
            // The client's side may be incomplete here (e.g. behind a shallow boundary).
            Err(OdbError::Missing(_)) => continue,
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
    min_depth: std::collections::HashMap<ObjNum, u64>,
    buf: &'b mut Vec<u8>,
}

impl TreeWalk<'_, '_> {
    fn add(
        &mut self,
        flags: &mut Flags,
        root: ObjNum,
        explicit: bool,
        ticker: &mut Ticker<'_>,
    ) -> Result<(), OdbError> {
        let depth_limit = self.filter.and_then(|f| f.filter.depth_limit());
        let sparse = self.filter.and_then(|f| f.sparse.as_ref());
        let odb = self.odb;
        let filter = self.filter;
        // Blobs such a filter drops are not even looked up (git looks them up, then drops them).
        let no_blobs = filter.is_some_and(|f| f.filter.drops_every_blob());
        // (tree, depth, name hash, path (sparse filters only))
        let mut stack: Vec<(ObjNum, u64, u32, Vec<u8>)> = vec![(root, 0, 0, Vec::new())];
        let mut subtrees: Vec<(ObjNum, u32, Vec<u8>)> = Vec::new();
        while let Some((t, depth, hash, path)) = stack.pop() {
            ticker.tick();
            let n = t as usize;
            if flags.uninteresting.get(n) {
                continue;
            }
            if depth_limit.is_some() {
                if self.min_depth.get(&t).is_some_and(|&d| d <= depth) {
                    continue;
                }
                self.min_depth.insert(t, depth);
                flags.seen.set(n);
            } else if flags.seen.test_and_set(n) {
                continue;
            }
            let keep = (explicit && depth == 0)
                || filter.is_none_or(|fl| fl.filter.keeps(Kind::Tree, depth, 0, &|| true));
            if keep {
                flags.send(t, hash);
            }
            if depth_limit.is_some_and(|l| depth >= l) {
                continue;
            }
            subtrees.clear();
            let at_root = depth == 0;
            let mut failed: Option<OdbError> = None;
            // Entries are handled as they are parsed; the name hash and path are worked out only
            // for objects met for the first time.
            odb.for_each_tree_entry_num(t, self.buf, |kind, name, id| match kind {
                EntryKind::Tree => {
                    let num = odb.num_or_add(id);
                    let x = num as usize;
                    if !flags.uninteresting.get(x) && (depth_limit.is_some() || !flags.seen.get(x)) {
                        subtrees.push((
                            num,
                            child_hash(hash, at_root, name),
                            join(&path, name, sparse.is_some()),
                        ));
                    }
                }
                EntryKind::Blob if no_blobs => {}
                EntryKind::Blob => {
                    let num = odb.num_or_add(id);
                    let b = num as usize;
                    if flags.sent.get(b) || flags.uninteresting.get(b) {
                        return;
                    }
                    let keep = match filter {
                        None => true,
                        Some(fl) => {
                            let size = if fl.filter.needs_blob_size() {
                                match odb.size_num(num) {
                                    Ok(s) => s.unwrap_or(0),
                                    Err(e) => {
                                        failed.get_or_insert(e);
                                        0
                                    }
                                }
                            } else {
                                0
                            };
                            fl.filter.keeps(Kind::Blob, depth + 1, size, &|| {
                                sparse.is_none_or(|s| s.keeps(&join(&path, name, true)))
                            })
                        }
                    };
                    flags.seen.set(b);
                    if keep {
                        flags.send(num, child_hash(hash, at_root, name));
                    }
                }
                EntryKind::Commit => {}
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            // Reverse so the first subtree is walked first.
            for (num, h, p) in subtrees.drain(..).rev() {
                stack.push((num, depth + 1, h, p));
            }
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

    #[test]
    fn path_hashes_continue() {
        assert_eq!(child_hash(0, true, b"src"), name_hash(b"src"));
        let dir = name_hash(b"src/pack");
        assert_eq!(child_hash(dir, false, b"writer.rs"), name_hash(b"src/pack/writer.rs"));
    }
}
