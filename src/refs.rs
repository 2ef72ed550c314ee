//! The refs a client may see: HEAD and every ref under `refs/`, sorted as git sorts them, with
//! annotated tags peeled and symbolic refs resolved. Broken refs are skipped as git skips them.

use gix::bstr::BString;
use gix::hash::ObjectId;
use gix::objs::Kind;

use crate::odb::Odb;

/// One visible ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Full name (`HEAD`, `refs/heads/main`).
    pub name: BString,
    /// What it points at.
    pub id: ObjectId,
    /// The non-tag object an annotated tag finally points at.
    pub peeled: Option<ObjectId>,
    /// For symbolic refs, the ref they point to.
    pub symref_target: Option<BString>,
}

/// Everything advertised about refs.
#[derive(Debug, Clone, Default)]
pub struct RefSet {
    /// HEAD, when it resolves to an object.
    pub head: Option<Ref>,
    /// The branch an unborn HEAD points to.
    pub unborn_head: Option<BString>,
    /// All other refs, sorted by name.
    pub refs: Vec<Ref>,
}

impl RefSet {
    /// HEAD (if any) then the refs, in advertisement order.
    pub fn iter(&self) -> impl Iterator<Item = &Ref> {
        self.head.iter().chain(self.refs.iter())
    }

    /// Every id a client may name as an advertised tip: ref values and their peeled values.
    pub fn tips(&self) -> gix::hashtable::HashSet<ObjectId> {
        let mut set = gix::hashtable::HashSet::default();
        for r in self.iter() {
            set.insert(r.id);
            if let Some(p) = r.peeled {
                set.insert(p);
            }
        }
        set
    }

    /// Annotated tags under `refs/tags/` (for `include-tag`).
    pub fn annotated_tags(&self) -> Vec<ObjectId> {
        self.refs
            .iter()
            .filter(|r| r.name.starts_with(b"refs/tags/") && r.peeled.is_some())
            .map(|r| r.id)
            .collect()
    }
}

/// Errors reading refs.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    #[error("cannot read refs: {0}")]
    Read(String),
}

fn peeled(odb: &Odb, id: &ObjectId) -> Option<ObjectId> {
    match odb.kind(id) {
        Ok(Some(Kind::Tag)) => odb.peel(id).ok().map(|(p, _)| p),
        _ => None,
    }
}

/// Resolves a ref by following symbolic refs, to its object id and the name it finally points to.
fn resolve(repo: &gix::Repository, start: gix::Reference<'_>) -> Option<(ObjectId, Option<BString>)> {
    let mut cur = start;
    let mut target_name = None;
    for _ in 0..10 {
        match cur.target() {
            gix::refs::TargetRef::Object(id) => return Some((id.to_owned(), target_name)),
            gix::refs::TargetRef::Symbolic(name) => {
                if target_name.is_none() {
                    target_name = Some(name.as_bstr().to_owned());
                }
                cur = repo.try_find_reference(name).ok().flatten()?;
            }
        }
    }
    None
}

/// Loads the visible refs of `repo`.
pub fn load(repo: &gix::Repository, odb: &Odb) -> Result<RefSet, RefsError> {
    let mut set = RefSet::default();
    let platform = repo.references().map_err(|e| RefsError::Read(e.to_string()))?;
    let iter = platform.all().map_err(|e| RefsError::Read(e.to_string()))?;
    for r in iter {
        let Ok(r) = r else { continue };
        let name = r.name().as_bstr().to_owned();
        if !name.starts_with(b"refs/") {
            continue;
        }
        let Some((id, symref_target)) = resolve(repo, r) else {
            continue;
        };
        if !odb.exists(&id) {
            continue;
        }
        set.refs.push(Ref { peeled: peeled(odb, &id), name, id, symref_target });
    }
    set.refs.sort_by(|a, b| a.name.cmp(&b.name));
    set.refs.dedup_by(|a, b| a.name == b.name);

    if let Ok(head) = repo.find_reference("HEAD") {
        match head.target() {
            gix::refs::TargetRef::Object(id) => {
                let id = id.to_owned();
                if odb.exists(&id) {
                    set.head =
                        Some(Ref { name: "HEAD".into(), peeled: peeled(odb, &id), id, symref_target: None });
                }
            }
            gix::refs::TargetRef::Symbolic(target) => {
                let target = target.as_bstr().to_owned();
                match resolve(repo, head) {
                    Some((id, _)) if odb.exists(&id) => {
                        set.head = Some(Ref {
                            name: "HEAD".into(),
                            peeled: peeled(odb, &id),
                            id,
                            symref_target: Some(target),
                        })
                    }
                    Some(_) => {}
                    None => set.unborn_head = Some(target),
                }
            }
        }
    }
    Ok(set)
}
