//! The refs a client may see: HEAD and every ref under `refs/` (inside `GIT_NAMESPACE` if one is
//! set, with the namespace prefix stripped), minus the hidden ones (`transfer.hideRefs`,
//! `uploadpack.hideRefs`), sorted as git sorts them, with annotated tags peeled and symbolic
//! refs resolved. Broken refs are skipped as git skips them.

use gix::bstr::{BString, ByteSlice};
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
    /// Values (and peeled values) of hidden refs: never advertised, only for want policies.
    pub hidden_tips: Vec<ObjectId>,
    /// Whether a namespace is in effect.
    pub namespaced: bool,
    /// Where HEAD points when it is a symbolic ref that resolves (git tells this in the v0
    /// `symref=` capability even when HEAD itself is hidden).
    pub head_symref: Option<BString>,
}

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
    pub fn is_hidden(&self, refname: &str, refname_full: &str) -> bool {
        for rule in self.hide.iter().rev() {
            let (neg, rule) = match rule.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, rule.as_str()),
            };
            let (subject, rule) = match rule.strip_prefix('^') {
                Some(r) => (refname_full, r),
                None => (refname, rule),
            };
            if let Some(rest) = subject.strip_prefix(rule) {
                if rest.is_empty() || rest.starts_with('/') {
                    return !neg;
                }
            }
        }
        false
    }
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

/// What an annotated tag peels to; `None` for other objects. `stored` is the value
/// `packed-refs` recorded for the ref (only tags have one), which saves the lookup.
fn peeled(odb: &Odb, id: &ObjectId, stored: Option<ObjectId>) -> Option<ObjectId> {
    if stored.is_some() {
        return stored;
    }
    match odb.kind(id) {
        Ok(Some(Kind::Tag)) => odb.peel(id).ok().map(|(p, _)| p),
        _ => None,
    }
}

/// Resolves a ref by following symbolic refs, to its object id and the name it finally points to
/// (for a symbolic ref). `Err(name)` when the chain ends at a ref that doesn't exist (unborn).
fn resolve(
    repo: &gix::Repository,
    start: gix::Reference<'_>,
) -> Result<(ObjectId, Option<BString>), Option<BString>> {
    let mut cur = start;
    let mut target_name: Option<BString> = None;
    for _ in 0..10 {
        match cur.target() {
            gix::refs::TargetRef::Object(id) => return Ok((id.to_owned(), target_name)),
            gix::refs::TargetRef::Symbolic(name) => {
                target_name = Some(name.as_bstr().to_owned());
                cur = match repo.try_find_reference(name) {
                    Ok(Some(r)) => r,
                    _ => return Err(target_name),
                };
            }
        }
    }
    Err(None)
}

/// Every ref under `refs/`, sorted by name, read in git's order: the loose refs first, then
/// `packed-refs` (a fresh read), a loose ref winning over its packed copy. A concurrent
/// `git pack-refs` writes `packed-refs` before it deletes the loose files, so a ref it moves
/// is seen in one or the other; reading `packed-refs` first could miss it.
fn all_refs(repo: &gix::Repository) -> Result<Vec<gix::refs::Reference>, RefsError> {
    let read_err = |e: &dyn std::fmt::Display| RefsError::Read(e.to_string());
    let mut by_name = std::collections::BTreeMap::new();
    // A loose ref that vanishes between listing and reading is an error item: packed now.
    for r in repo.refs.loose_iter().map_err(|e| read_err(&e))?.flatten() {
        by_name.insert(r.name.as_bstr().to_owned(), r);
    }
    if let Some(packed) = repo.refs.open_packed_buffer().map_err(|e| read_err(&e))? {
        for r in packed.iter().map_err(|e| read_err(&e))?.flatten() {
            by_name.entry(r.name.as_bstr().to_owned()).or_insert_with(|| r.into());
        }
    }
    Ok(by_name.into_values().collect())
}

/// Loads the visible refs of `repo`.
pub fn load(repo: &gix::Repository, odb: &Odb, view: &RefView) -> Result<RefSet, RefsError> {
    let mut set = RefSet::default();
    let prefix = view.prefix();
    set.namespaced = !prefix.is_empty();
    let iter = all_refs(repo)?;
    let strip = |full: &[u8]| -> Option<BString> {
        full.strip_prefix(prefix.as_bytes())
            .filter(|n| n.starts_with(b"refs/"))
            .map(|n| n.as_bstr().to_owned())
    };
    for r in iter {
        let r = gix::prelude::ReferenceExt::attach(r, repo);
        let full = r.name().as_bstr().to_owned();
        let Some(name) = strip(&full) else { continue };
        let stored_peel = r.inner.peeled;
        let Ok((id, symref_target)) = resolve(repo, r) else { continue };
        if !odb.exists(&id) {
            continue;
        }
        let peeled = peeled(odb, &id, stored_peel);
        if !view.hide.is_empty() && view.is_hidden(&name.to_string(), &full.to_string()) {
            set.hidden_tips.push(id);
            set.hidden_tips.extend(peeled);
            continue;
        }
        let symref_target = symref_target.map(|t| strip(&t).unwrap_or(t));
        set.refs.push(Ref { peeled, name, id, symref_target });
    }
    set.refs.sort_by(|a, b| a.name.cmp(&b.name));
    set.refs.dedup_by(|a, b| a.name == b.name);

    let head_full = format!("{prefix}HEAD");
    let hidden = view.is_hidden("HEAD", &head_full);
    if let Ok(Some(head)) = repo.try_find_reference(head_full.as_str()) {
        let symbolic = matches!(head.target(), gix::refs::TargetRef::Symbolic(_));
        match resolve(repo, head) {
            Ok((id, target)) if odb.exists(&id) => {
                let symref_target = if symbolic { target.map(|t| strip(&t).unwrap_or(t)) } else { None };
                set.head_symref.clone_from(&symref_target);
                let head = Ref { name: "HEAD".into(), peeled: peeled(odb, &id, None), id, symref_target };
                if hidden {
                    set.hidden_tips.push(head.id);
                    set.hidden_tips.extend(head.peeled);
                } else {
                    set.head = Some(head);
                }
            }
            Ok(_) => {}
            Err(target) if !hidden => set.unborn_head = target.map(|t| strip(&t).unwrap_or(t)),
            Err(_) => {}
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(rules: &[&str], ns: Option<&str>) -> RefView {
        RefView { namespace: ns.map(Into::into), hide: rules.iter().map(|r| r.to_string()).collect() }
    }

    #[test]
    fn hide_rules_like_git() {
        let v = view(&["refs/hidden", "!refs/hidden/shown", "refs/pull"], None);
        assert!(v.is_hidden("refs/hidden/x", "refs/hidden/x"));
        assert!(v.is_hidden("refs/hidden", "refs/hidden"));
        assert!(!v.is_hidden("refs/hiddenx", "refs/hiddenx"));
        assert!(!v.is_hidden("refs/hidden/shown", "refs/hidden/shown"));
        assert!(!v.is_hidden("refs/hidden/shown/deeper", "refs/hidden/shown/deeper"));
        assert!(v.is_hidden("refs/pull/1/head", "refs/pull/1/head"));
        assert!(!v.is_hidden("refs/heads/main", "refs/heads/main"));
    }

    #[test]
    fn full_name_rules_with_namespaces() {
        let v = view(&["^refs/namespaces/foo/refs/tags"], Some("foo"));
        assert!(v.is_hidden("refs/tags/v1", "refs/namespaces/foo/refs/tags/v1"));
        assert!(!v.is_hidden("refs/heads/main", "refs/namespaces/foo/refs/heads/main"));
        let v = view(&["refs/tags"], Some("foo"));
        assert!(v.is_hidden("refs/tags/v1", "refs/namespaces/foo/refs/tags/v1"));
    }

    #[test]
    fn namespace_prefix() {
        assert_eq!(view(&[], None).prefix(), "");
        assert_eq!(view(&[], Some("foo")).prefix(), "refs/namespaces/foo/");
        assert_eq!(view(&[], Some("a/b")).prefix(), "refs/namespaces/a/refs/namespaces/b/");
    }
}
