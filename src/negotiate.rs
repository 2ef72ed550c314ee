//! Finding the common commits: what a `have` means, and when the server may say "ready"
//! (every want reaches something the client has). Pure over the object database; the session
//! turns the answers into ACK/NAK lines.

use gix::hash::{oid, ObjectId};
use gix::hashtable::{HashMap, HashSet};
use gix::objs::Kind;

use crate::odb::{Odb, OdbError};

/// The answer to one `have`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Have {
    /// We don't have the object.
    Unknown,
    /// We have it; it is now a common object. `known` when it is a commit we already knew the
    /// client has (a have or the parent of one): v2 does not acknowledge those again.
    Common {
        /// Already implied by an earlier have.
        known: bool,
    },
}

/// Negotiation state of one request (v0 keeps it for the whole connection).
#[derive(Default)]
pub struct Negotiator {
    /// Objects both sides have, in the order they were first acknowledged.
    common: Vec<ObjectId>,
    common_set: HashSet<ObjectId>,
    /// Commits the client has: the `have`s and their parents.
    they_have: HashSet<ObjectId>,
    oldest_have: Option<i64>,
    /// Wants already known to reach a commit the client has.
    reaches: HashMap<ObjectId, bool>,
    haves_seen: usize,
}

impl Negotiator {
    /// A fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The common objects so far.
    pub fn common(&self) -> &[ObjectId] {
        &self.common
    }

    /// How many `have` lines were seen.
    pub fn haves_seen(&self) -> usize {
        self.haves_seen
    }

    /// Records a `have` line.
    pub fn have(&mut self, odb: &Odb, id: &oid) -> Result<Have, OdbError> {
        self.haves_seen += 1;
        let kind = match odb.kind(id)? {
            Some(k) => k,
            None => return Ok(Have::Unknown),
        };
        let mut known = false;
        if kind == Kind::Commit {
            let info = odb.commit(id)?;
            known = !self.they_have.insert(id.to_owned());
            self.oldest_have = Some(self.oldest_have.map_or(info.time, |t| t.min(info.time)));
            for p in info.parents {
                self.they_have.insert(p);
            }
        }
        if self.common_set.insert(id.to_owned()) {
            self.common.push(id.to_owned());
        }
        Ok(Have::Common { known })
    }

    /// Whether the client has sent enough: every wanted commit reaches a commit it has
    /// (walking no further back than the oldest `have`). Non-commit wants count as reached.
    pub fn ok_to_give_up(&mut self, odb: &Odb, wants: &[ObjectId]) -> Result<bool, OdbError> {
        if self.common.is_empty() {
            return Ok(false);
        }
        let cutoff = self.oldest_have.unwrap_or(i64::MIN);
        for w in wants {
            if self.reaches.get(w) == Some(&true) {
                continue;
            }
            let (peeled, kind) = match odb.peel(w) {
                Ok(p) => p,
                Err(OdbError::Missing(_)) => continue,
                Err(e) => return Err(e),
            };
            if kind != Kind::Commit {
                self.reaches.insert(*w, true);
                continue;
            }
            if !self.reaches_have(odb, &peeled, cutoff)? {
                return Ok(false);
            }
            self.reaches.insert(*w, true);
        }
        Ok(true)
    }

    fn reaches_have(&mut self, odb: &Odb, start: &oid, cutoff: i64) -> Result<bool, OdbError> {
        let mut seen: HashSet<ObjectId> = HashSet::default();
        let mut stack = vec![start.to_owned()];
        while let Some(c) = stack.pop() {
            if self.they_have.contains(&c) || self.reaches.get(&c) == Some(&true) {
                return Ok(true);
            }
            if !seen.insert(c) {
                continue;
            }
            let info = match odb.commit(&c) {
                Ok(i) => i,
                Err(OdbError::Missing(_)) => continue,
                Err(e) => return Err(e),
            };
            if info.time < cutoff {
                continue;
            }
            stack.extend(info.parents);
        }
        Ok(false)
    }
}
