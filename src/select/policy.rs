//! Which wants are allowed: an advertised tip, a hidden tip (`allowTipSHA1InWant`), something
//! reachable from the tips (stateless v0, `allowReachableSHA1InWant`, packserve's v2 default),
//! or (`allowAnySHA1InWant`) any object the repository has.

use gix::hash::ObjectId;
use gix::hashtable::HashSet;
use gix::objs::Kind;

use crate::odb::{Odb, OdbError};
use crate::select::walk;

/// Which wants are allowed, in plain values.
#[derive(Debug, Clone, Default)]
pub struct WantRules {
    /// Ids a want may always name (advertised ref values and their peeled values).
    pub tips: HashSet<ObjectId>,
    /// Ids a want may name too although they were not advertised (hidden tips, when allowed).
    pub extra_tips: HashSet<ObjectId>,
    /// Whether a want may name something reachable from `reach_from`.
    pub reachable: bool,
    /// Where reachability is checked from.
    pub reach_from: HashSet<ObjectId>,
    /// Any object in the repository may be wanted.
    pub any: bool,
}

/// Returns the first want that is not allowed, if any.
pub fn first_disallowed(
    odb: &Odb,
    wants: &[ObjectId],
    rules: &WantRules,
) -> Result<Option<ObjectId>, OdbError> {
    let mut others = Vec::new();
    for w in wants {
        if rules.tips.contains(w) || rules.extra_tips.contains(w) {
            continue;
        }
        if !odb.exists(w) || !(rules.any || rules.reachable) {
            return Ok(Some(*w));
        }
        if !rules.any {
            others.push(*w);
        }
    }
    if others.is_empty() {
        return Ok(None);
    }
    let tips = &rules.reach_from;
    // Commits first: a walk from the tips, pruned by generation when the commit-graph has them.
    let mut commits = HashSet::default();
    let mut rest = Vec::new();
    for w in others {
        match odb.kind(&w)? {
            Some(Kind::Commit) => {
                commits.insert(w);
            }
            _ => rest.push(w),
        }
    }
    if !commits.is_empty() {
        let min_gen =
            commits.iter().map(|c| odb.commit(c).map(|i| i.generation)).collect::<Result<Vec<_>, _>>()?;
        let min_gen = min_gen.into_iter().min().unwrap_or(0);
        let use_gen = min_gen != u32::MAX;
        let mut seen = HashSet::default();
        let mut stack: Vec<ObjectId> = Vec::new();
        for t in tips {
            if let Ok((peeled, Kind::Commit)) = odb.peel(t) {
                stack.push(peeled);
            }
        }
        while let Some(c) = stack.pop() {
            if commits.is_empty() {
                break;
            }
            if !seen.insert(c) {
                continue;
            }
            commits.remove(&c);
            let info = match odb.commit(&c) {
                Ok(i) => i,
                Err(OdbError::Missing(_)) => continue,
                Err(e) => return Err(e),
            };
            for p in info.parents {
                if use_gen {
                    if let Ok(pi) = odb.commit(&p) {
                        if pi.generation != u32::MAX && pi.generation < min_gen {
                            continue;
                        }
                    }
                }
                stack.push(p);
            }
        }
        if let Some(c) = commits.into_iter().next() {
            return Ok(Some(c));
        }
    }
    if !rest.is_empty() {
        // Trees, blobs and tags: enumerate what the tips reach.
        let req = walk::Request { wants: tips.iter().copied().collect(), ..Default::default() };
        let sel = walk::enumerate(odb, &req, &mut walk::Ticker::new(&mut || {}))
            .map_err(|walk::WalkError::Odb(e)| e)?;
        if let Some(bad) = rest.into_iter().find(|r| !odb.num(r).is_some_and(|n| sel.sent.get(n as usize))) {
            return Ok(Some(bad));
        }
    }
    Ok(None)
}
