//! Which wants are allowed: an advertised tip, a hidden tip (`allowTipSHA1InWant`), something
//! reachable from the tips (stateless v0, `allowReachableSHA1InWant`, packserve's v2 default),
//! or (`allowAnySHA1InWant`) any object the repository has.
//!
//! "Reachable" is answered as cheaply as the question allows, never by enumerating everything
//! the tips reach:
//! - with a reachability bitmap, the tips' bitmaps are OR-ed in one tip at a time (most likely
//!   first) until every want's bit is set ([`bitmap::unreached`]);
//! - without one, [`unreached_by_walk`] walks from the tips newest first and stops as soon as
//!   every want is found; when only commits are wanted, it does not go below the oldest
//!   wanted commit's generation (commit-graph), and it reads no trees.
//!
//! Only a want that no tip reaches costs a walk of everything the tips reach.

use std::collections::BinaryHeap;

use gix::hash::ObjectId;
use gix::hashtable::HashSet;
use gix::objs::Kind;

use crate::bits::Bits;
use crate::odb::{EntryKind, Odb, OdbError};
use crate::select::bitmap::{self, BitmapIndex};

/// Which wants are allowed, in plain values.
#[derive(Debug, Clone, Default)]
pub struct WantRules {
    /// Ids a want may always name (advertised ref values and their peeled values).
    pub tips: HashSet<ObjectId>,
    /// Ids a want may name too although they were not advertised (hidden tips, when allowed).
    pub extra_tips: HashSet<ObjectId>,
    /// Whether a want may name something reachable from `reach_from`.
    pub reachable: bool,
    /// Where reachability is checked from, most likely first (HEAD, branches, the rest); each
    /// id once.
    pub reach_from: Vec<ObjectId>,
    /// Any object in the repository may be wanted.
    pub any: bool,
}

/// How reachability is answered besides the walk.
#[derive(Default, Clone, Copy)]
pub struct Reach<'a, 'i> {
    /// The repository's reachability bitmap, when it has one that may be used.
    pub index: Option<&'i BitmapIndex<'a>>,
    /// Everything the tips reach, when a reachable-set cache has it for these tips: the
    /// answer without any walk.
    pub known: Option<&'i dyn Fn(&gix::hash::oid) -> bool>,
    /// Without a bitmap or a known set: how many trees the walk may read before it gives up
    /// (then [`disallowed`] answers [`Outcome::OverBudget`]); `None`: no limit.
    pub tree_budget: Option<u64>,
}

/// The answer of [`disallowed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The wants that are not allowed, in the order given.
    Refused(Vec<ObjectId>),
    /// The walk read [`Reach::tree_budget`] trees without an answer.
    OverBudget,
}

impl Outcome {
    /// The refused wants; none when the walk ran over its budget (only a budget gives that,
    /// so callers without one take the answer as it is).
    pub fn refused(self) -> Vec<ObjectId> {
        match self {
            Outcome::Refused(r) => r,
            Outcome::OverBudget => Vec::new(),
        }
    }
}

/// The wants that are not allowed, in the order given (`object-info` answers each id).
pub fn disallowed(
    odb: &Odb,
    reach: Reach<'_, '_>,
    wants: &[ObjectId],
    rules: &WantRules,
) -> Result<Outcome, OdbError> {
    let mut refused = Vec::new();
    let mut others = Vec::new();
    let mut asked: HashSet<ObjectId> = HashSet::default();
    for w in wants {
        if rules.tips.contains(w) || rules.extra_tips.contains(w) || !asked.insert(*w) {
            continue;
        }
        if !odb.exists(w) || !(rules.any || rules.reachable) {
            refused.push(*w);
        } else if !rules.any {
            others.push(*w);
        }
    }
    if !others.is_empty() {
        let from_bitmap = reach.index.map(|i| bitmap::unreached(i, odb, &rules.reach_from, &others));
        let unreached = match (from_bitmap, reach.known) {
            (Some(Ok(u)), _) => u,
            (_, Some(known)) => others.iter().filter(|w| !known(w)).copied().collect(),
            // An unreadable bitmap only costs speed: the walk gives the same answer.
            _ => match unreached_by_walk(odb, &rules.reach_from, &others, reach.tree_budget)? {
                Some(u) => u,
                None => return Ok(Outcome::OverBudget),
            },
        };
        refused.extend(unreached);
    }
    // In the order of the request.
    let order: gix::hashtable::HashMap<ObjectId, usize> =
        wants.iter().enumerate().rev().map(|(i, w)| (*w, i)).collect();
    refused.sort_by_key(|w| order.get(w).copied().unwrap_or(usize::MAX));
    Ok(Outcome::Refused(refused))
}

/// Commits met by [`unreached_by_walk`]: by commit-graph position where the graph has them.
struct SeenCommits<'a> {
    graph: Option<&'a gix::commitgraph::Graph>,
    by_position: Bits,
    others: HashSet<ObjectId>,
}

impl SeenCommits<'_> {
    /// Marks `id` seen; whether it was new.
    fn insert(&mut self, id: &ObjectId) -> bool {
        match self.graph.and_then(|g| g.lookup(id)) {
            Some(p) => !self.by_position.test_and_set(p.0 as usize),
            None => self.others.insert(*id),
        }
    }
}

/// Of `targets` (existing objects), those that no tip in `tips` reaches, found by walking from
/// the tips and stopping as soon as every target is met. Commits are taken newest first
/// (generation, then date), so that recent wants are found after a short walk; trees are read
/// only while a tree, blob or tag is still to be found, each tree once. Missing objects below a
/// tip reach nothing (the answer never says more is reachable than really is). `None` when
/// `tree_budget` trees were read and a target is still to be found.
pub fn unreached_by_walk(
    odb: &Odb,
    tips: &[ObjectId],
    targets: &[ObjectId],
    tree_budget: Option<u64>,
) -> Result<Option<Vec<ObjectId>>, OdbError> {
    let mut commits: HashSet<ObjectId> = HashSet::default();
    let mut others: HashSet<ObjectId> = HashSet::default();
    for t in targets {
        match odb.kind(t)? {
            Some(Kind::Commit) => {
                commits.insert(*t);
            }
            Some(_) => {
                others.insert(*t);
            }
            None => {}
        }
    }
    // Where the walk starts: the tips, their tag chains peeled (a tag is reached on its chain).
    let mut queue: BinaryHeap<(u32, i64, ObjectId)> = BinaryHeap::new();
    let mut seen = SeenCommits { graph: odb.graph(), by_position: Bits::new(), others: HashSet::default() };
    let mut root_trees: Vec<ObjectId> = Vec::new();
    let push_commit =
        |id: ObjectId, queue: &mut BinaryHeap<(u32, i64, ObjectId)>, seen: &mut SeenCommits<'_>| {
            if !seen.insert(&id) {
                return Ok(());
            }
            match odb.commit(&id) {
                Ok(info) => queue.push((gen_key(info.generation), info.time, id)),
                Err(OdbError::Missing(_)) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        };
    for tip in tips {
        let mut cur = *tip;
        for _ in 0..100 {
            others.remove(&cur);
            match odb.kind(&cur)? {
                Some(Kind::Tag) => match odb.tag_target(&cur) {
                    Ok((target, _)) => cur = target,
                    Err(OdbError::Missing(_)) => break,
                    Err(e) => return Err(e),
                },
                Some(Kind::Commit) => {
                    push_commit(cur, &mut queue, &mut seen)?;
                    break;
                }
                Some(Kind::Tree) => {
                    root_trees.push(cur);
                    break;
                }
                Some(Kind::Blob) | None => break,
            }
        }
    }
    let mut trees = TreeSearch {
        odb,
        seen: Bits::new(),
        buf: Vec::new(),
        stack: Vec::new(),
        read: 0,
        budget: tree_budget,
    };
    for t in root_trees {
        if others.is_empty() {
            break;
        }
        if !trees.search(t, &mut others)? {
            return Ok(None);
        }
    }
    // The oldest generation a wanted commit has: below it, no wanted commit can be (when every
    // generation is known).
    let mut min_gen = u32::MAX;
    let mut all_gens = true;
    for c in &commits {
        match odb.commit(c) {
            Ok(info) if info.generation != u32::MAX => min_gen = min_gen.min(info.generation),
            _ => all_gens = false,
        }
    }
    while let Some((_, _, c)) = queue.pop() {
        if commits.is_empty() && others.is_empty() {
            break;
        }
        commits.remove(&c);
        let info = match odb.commit(&c) {
            Ok(i) => i,
            Err(OdbError::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        if !others.is_empty() && !trees.search(info.tree, &mut others)? {
            return Ok(None);
        }
        for p in info.parents {
            if others.is_empty() && all_gens {
                // Only commits are left to find: none is below the oldest one's generation.
                if let Ok(pi) = odb.commit(&p) {
                    if pi.generation != u32::MAX && pi.generation < min_gen {
                        continue;
                    }
                }
            }
            push_commit(p, &mut queue, &mut seen)?;
        }
    }
    let mut left: Vec<ObjectId> =
        targets.iter().filter(|t| commits.contains(*t) || others.contains(*t)).copied().collect();
    left.dedup();
    Ok(Some(left))
}

/// Queue order of a commit: generation first where the commit-graph gives one.
fn gen_key(generation: u32) -> u32 {
    if generation == u32::MAX {
        0
    } else {
        generation
    }
}

/// Trees read by [`unreached_by_walk`], each once.
struct TreeSearch<'a> {
    odb: &'a Odb,
    seen: Bits,
    buf: Vec<u8>,
    stack: Vec<ObjectId>,
    /// Trees read so far, and how many may be.
    read: u64,
    budget: Option<u64>,
}

impl TreeSearch<'_> {
    /// Removes from `targets` what `root` reaches, reading each tree not read before; stops
    /// when `targets` is empty. `false` when the budget ran out first.
    fn search(&mut self, root: ObjectId, targets: &mut HashSet<ObjectId>) -> Result<bool, OdbError> {
        self.stack.clear();
        self.stack.push(root);
        while let Some(t) = self.stack.pop() {
            targets.remove(&t);
            if targets.is_empty() {
                return Ok(true);
            }
            let num = self.odb.num_or_add(&t);
            if self.seen.test_and_set(num as usize) {
                continue;
            }
            self.read += 1;
            if self.budget.is_some_and(|b| self.read > b) {
                return Ok(false);
            }
            let stack = &mut self.stack;
            let res = self.odb.for_each_tree_entry_num(num, &mut self.buf, |kind, _, id| match kind {
                EntryKind::Tree => stack.push(id.to_owned()),
                EntryKind::Blob => {
                    if !targets.is_empty() {
                        targets.remove(id);
                    }
                }
                EntryKind::Commit => {}
            });
            match res {
                Ok(()) => {}
                // A tree that cannot be read reaches nothing more.
                Err(OdbError::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Every object the tips reach (a missing object reaches nothing more), for a reachable-set
/// cache: what a clone of every tip would count.
pub fn reachable_ids(odb: &Odb, tips: &[ObjectId]) -> Result<Vec<ObjectId>, OdbError> {
    use crate::select::walk;
    let present: Vec<ObjectId> = tips.iter().filter(|t| odb.exists(t)).copied().collect();
    let req = walk::Request { wants: present, ..Default::default() };
    let sel = walk::enumerate(odb, &req, &mut walk::Ticker::new(&mut || {}))
        .map_err(|walk::WalkError::Odb(e)| e)?;
    Ok(sel.sent.iter().map(|n| odb.id(n as crate::pack::ObjNum)).collect())
}
