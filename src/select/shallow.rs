//! Shallow requests: `deepen <n>`, `deepen-since`, `deepen-not`, `deepen-relative`, the client's
//! own shallow commits, and a server repository that is itself shallow. Decides the `shallow` and
//! `unshallow` lines and the boundary the object walk must not cross, as git's upload-pack does.

use gix::hash::ObjectId;
use gix::hashtable::{HashMap, HashSet};
use gix::objs::Kind;

use crate::odb::{Odb, OdbError};
use crate::select::walk;

/// `deepen 2147483647`, what `git fetch --unshallow` sends.
pub const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// What the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepenRequest {
    /// The client's shallow commits that exist here (others are ignored, as git does).
    pub client_shallow: Vec<ObjectId>,
    /// `deepen <n>`, 0 when absent.
    pub depth: u32,
    /// `deepen-since <t>`.
    pub since: Option<u64>,
    /// `deepen-not <ref>`, resolved.
    pub not: Vec<ObjectId>,
    /// `deepen-relative`.
    pub relative: bool,
}

impl DeepenRequest {
    /// Whether a new shallow boundary is asked for.
    pub fn deepens(&self) -> bool {
        self.depth > 0 || self.rev_list()
    }

    fn rev_list(&self) -> bool {
        self.since.is_some() || !self.not.is_empty()
    }
}

/// The outcome: lines for the client and the boundary for the walk.
#[derive(Debug, Clone, Default)]
pub struct ShallowInfo {
    /// Whether a shallow list was computed (a deepen request): then the lines are sent.
    pub computed: bool,
    /// New shallow commits of the client.
    pub shallow: Vec<ObjectId>,
    /// Client shallow commits that are no longer shallow.
    pub unshallow: Vec<ObjectId>,
    /// Parents of the unshallowed commits: wanted too.
    pub extra_wants: Vec<ObjectId>,
    /// The unshallowed commits: the client has them.
    pub extra_common: Vec<ObjectId>,
    /// Commits the walk treats as having no parents.
    pub boundary: HashSet<ObjectId>,
}

/// Errors of a shallow request (texts as git's).
#[derive(Debug, thiserror::Error)]
pub enum ShallowError {
    #[error("git upload-pack: deepen and deepen-since (or deepen-not) cannot be used together")]
    Both,
    #[error("no commits selected for shallow requests")]
    NoCommits,
    #[error(transparent)]
    Odb(#[from] OdbError),
}

/// Computes the shallow lines and boundary. `tips` are the visible ref values (for
/// `deepen-relative`). When nothing deepens but the server is shallow and `server_list` is set
/// (v2 always tells), the server's own boundary reachable from the wants is sent.
pub fn compute(
    odb: &Odb,
    wants: &[ObjectId],
    req: &DeepenRequest,
    tips: &[ObjectId],
    server_list: bool,
) -> Result<ShallowInfo, ShallowError> {
    if req.depth > 0 && req.rev_list() {
        return Err(ShallowError::Both);
    }
    let client: HashSet<ObjectId> = req.client_shallow.iter().copied().collect();
    let mut info = ShallowInfo::default();
    let mut not_shallow: HashSet<ObjectId> = HashSet::default();
    let mut result: Vec<ObjectId> = Vec::new();
    let server_shallow = !odb.shallow().is_empty();
    if req.depth > 0 {
        info.computed = true;
        if req.depth == INFINITE_DEPTH && !server_shallow {
            not_shallow.extend(client.iter().copied());
        } else if req.relative {
            let unreachable: HashSet<ObjectId> =
                walk::rev_list(odb, &req.client_shallow, tips, None, &HashSet::default())?
                    .into_iter()
                    .collect();
            let reachable: Vec<ObjectId> =
                req.client_shallow.iter().filter(|c| !unreachable.contains(*c)).copied().collect();
            (result, not_shallow) = shallow_commits(odb, &reachable, req.depth.saturating_add(1))?;
        } else {
            (result, not_shallow) = shallow_commits(odb, wants, req.depth)?;
        }
    } else if req.rev_list() {
        info.computed = true;
        let since = req.since.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let list = walk::rev_list(odb, wants, &req.not, since, &HashSet::default())?;
        if list.is_empty() {
            return Err(ShallowError::NoCommits);
        }
        not_shallow = list.iter().copied().collect();
        for c in &list {
            if odb.commit(c)?.parents.iter().any(|p| !not_shallow.contains(p)) {
                result.push(*c);
            }
        }
        // A border commit is shallow, not "not shallow".
        for c in &result {
            not_shallow.remove(c);
        }
    } else if server_list && server_shallow {
        info.computed = true;
        (result, not_shallow) = shallow_commits(odb, wants, INFINITE_DEPTH)?;
    }
    for c in result {
        if !client.contains(&c) && !not_shallow.contains(&c) && info.boundary.insert(c) {
            info.shallow.push(c);
        }
    }
    for c in &req.client_shallow {
        if not_shallow.contains(c) {
            info.unshallow.push(*c);
            info.extra_wants.extend(odb.commit(c)?.parents);
            info.extra_common.push(*c);
        }
        // The walk must follow the client's view of history.
        info.boundary.insert(*c);
    }
    Ok(info)
}

/// git's `get_shallow_commits`: a depth-first walk from `heads` keeping the smallest depth seen
/// per commit; commits at `depth` (or parentless commits of a shallow repository) are the new
/// shallow boundary, everything above it is "not shallow".
fn shallow_commits(
    odb: &Odb,
    heads: &[ObjectId],
    depth: u32,
) -> Result<(Vec<ObjectId>, HashSet<ObjectId>), OdbError> {
    let mut result = Vec::new();
    let mut not_shallow = HashSet::default();
    let mut depths: HashMap<ObjectId, u32> = HashMap::default();
    let mut stack: Vec<ObjectId> = Vec::new();
    let mut heads = heads.iter();
    let mut current: Option<(ObjectId, u32)> = None;
    loop {
        let (commit, mut cur_depth) = match current.take() {
            Some(c) => c,
            None => {
                if let Some(h) = heads.next() {
                    let Ok((c, Kind::Commit)) = odb.peel(h) else { continue };
                    depths.insert(c, 0);
                    (c, 0)
                } else if let Some(c) = stack.pop() {
                    let d = depths.get(&c).copied().unwrap_or(0);
                    (c, d)
                } else {
                    break;
                }
            }
        };
        let info = odb.commit(&commit)?;
        cur_depth += 1;
        let server_boundary = info.parents.is_empty() && odb.shallow().contains(&commit);
        if (depth != INFINITE_DEPTH && cur_depth >= depth) || server_boundary {
            result.push(commit);
            continue;
        }
        not_shallow.insert(commit);
        let n = info.parents.len();
        for (k, p) in info.parents.into_iter().enumerate() {
            match depths.get_mut(&p) {
                None => {
                    depths.insert(p, cur_depth);
                }
                Some(d) if cur_depth < *d => *d = cur_depth,
                Some(_) => continue,
            }
            if k + 1 < n {
                stack.push(p);
            } else {
                current = Some((p, cur_depth));
            }
        }
    }
    // git builds this list by prepending: the lines go out last-found first.
    result.reverse();
    Ok((result, not_shallow))
}
