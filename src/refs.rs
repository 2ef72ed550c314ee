//! The refs a client may see: HEAD and every ref under `refs/` (inside `GIT_NAMESPACE` if one is
//! set, with the namespace prefix stripped), minus the hidden ones (`transfer.hideRefs`,
//! `uploadpack.hideRefs`), sorted as git sorts them, with annotated tags peeled and symbolic
//! refs resolved. Broken refs are advertised as git (2.36+, `GIT_REF_PARANOIA` on by default)
//! advertises them, so that a client fails loudly instead of silently missing a ref: a ref whose
//! object is missing with the id it stores, a loose ref whose file is not a ref with the null
//! id; symbolic refs whose target is missing or broken are left out, and a `packed-refs` line
//! git cannot parse ends the session with git's message.

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
    /// A `packed-refs` line git dies on (git's message: `unexpected line in <path>: <line>`).
    #[error("{0}")]
    PackedRefs(String),
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

/// Where a ref leads.
enum Resolved {
    /// To an object id (which may be missing), through the symbolic ref target named, if any.
    Id(ObjectId, Option<BString>),
    /// To a ref that does not exist (an unborn branch).
    Unborn(BString),
    /// To a ref that cannot be read, or round in circles.
    Broken,
}

/// Resolves a ref by following symbolic refs, to its object id and the name it finally points
/// to (for a symbolic ref).
fn resolve(repo: &gix::Repository, start: gix::Reference<'_>) -> Resolved {
    let mut cur = start;
    let mut target_name: Option<BString> = None;
    for _ in 0..10 {
        match cur.target() {
            gix::refs::TargetRef::Object(id) => return Resolved::Id(id.to_owned(), target_name),
            gix::refs::TargetRef::Symbolic(name) => {
                target_name = Some(name.as_bstr().to_owned());
                cur = match repo.try_find_reference(name) {
                    Ok(Some(r)) => r,
                    Ok(None) => return Resolved::Unborn(name.as_bstr().to_owned()),
                    Err(_) => return Resolved::Broken,
                };
            }
        }
    }
    Resolved::Broken
}

/// A ref as stored: one gix could read, or a loose ref file whose content is not a ref (git
/// lists it with the null id).
enum Stored {
    Ref(gix::refs::Reference),
    Corrupt(BString),
}

/// Every ref under `refs/`, sorted by name, read in git's order: the loose refs first, then
/// `packed-refs` (a fresh read), a loose ref winning over its packed copy. A concurrent
/// `git pack-refs` writes `packed-refs` before it deletes the loose files, so a ref it moves
/// is seen in one or the other; reading `packed-refs` first could miss it.
fn all_refs(repo: &gix::Repository) -> Result<Vec<Stored>, RefsError> {
    let read_err = |e: &dyn std::fmt::Display| RefsError::Read(e.to_string());
    let mut by_name = std::collections::BTreeMap::new();
    for r in repo.refs.loose_iter().map_err(|e| read_err(&e))? {
        match r {
            Ok(r) => {
                by_name.insert(r.name.as_bstr().to_owned(), Stored::Ref(r));
            }
            Err(e) => {
                // A file that is not a ref. Any other error is a loose ref that vanished between
                // listing and reading: packed now.
                let decode = e.downcast_any_ref::<gix::refs::file::find::ReferenceDecode>();
                if let Some(Ok(name)) = decode.map(|d| gix::path::into_bstr(&d.relative_path)) {
                    let name = name.into_owned();
                    by_name.insert(name.clone(), Stored::Corrupt(name));
                }
            }
        }
    }
    // gix refuses what git dies on, and records with invalid names, which git lists.
    let mut unparsed = false;
    match repo.refs.open_packed_buffer() {
        Ok(None) => {}
        Ok(Some(packed)) => match packed.iter() {
            Ok(iter) => {
                for r in iter {
                    match r {
                        Ok(r) => {
                            let name = r.name.as_bstr().to_owned();
                            by_name.entry(name).or_insert_with(|| Stored::Ref(r.into()));
                        }
                        Err(_) => unparsed = true,
                    }
                }
            }
            Err(_) => unparsed = true,
        },
        Err(_) => unparsed = true,
    }
    if unparsed {
        // git names it relative to the git directory it was started in, or by the real path of
        // the common directory of a worktree's git directory.
        let path = repo.common_dir().join("packed-refs");
        let shown = if repo.common_dir() == repo.git_dir() {
            "./packed-refs".into()
        } else {
            let common = repo.common_dir().canonicalize().unwrap_or_else(|_| repo.common_dir().to_owned());
            common.join("packed-refs").display().to_string()
        };
        let buf = std::fs::read(&path).map_err(|e| read_err(&e))?;
        for name in packed_bad_names(&buf, repo.object_hash().len_in_hex(), &shown)? {
            by_name.entry(name.clone()).or_insert(Stored::Corrupt(name));
        }
    }
    Ok(by_name.into_values().collect())
}

/// What git makes of a `packed-refs` file that gix would not parse (packed-backend.c
/// `next_record`): the names of records that are refs with invalid names (listed with the null
/// id), or git's message for the first line it dies on.
fn packed_bad_names(buf: &[u8], hex_len: usize, shown: &str) -> Result<Vec<BString>, RefsError> {
    let die = |rest: &[u8]| {
        let (kind, line) = match rest.iter().position(|&b| b == b'\n') {
            Some(eol) => ("unexpected", &rest[..eol]),
            None => ("unterminated", rest),
        };
        let line =
            if line.len() < 80 { line.as_bstr().to_string() } else { format!("{}...", line[..75].as_bstr()) };
        RefsError::PackedRefs(format!("{kind} line in {shown}: {line}"))
    };
    let hex_at = |s: &[u8]| s.len() >= hex_len && s[..hex_len].iter().all(u8::is_ascii_hexdigit);
    let mut rest = buf;
    if rest.starts_with(b"#") {
        let eol = rest.iter().position(|&b| b == b'\n').ok_or_else(|| die(rest))?;
        if !rest.starts_with(b"# pack-refs with:") {
            return Err(die(rest));
        }
        rest = &rest[eol + 1..];
    }
    let mut bad = Vec::new();
    while !rest.is_empty() {
        if rest.len() < hex_len + 2 || !hex_at(rest) || !rest[hex_len].is_ascii_whitespace() {
            return Err(die(rest));
        }
        let eol = rest.iter().position(|&b| b == b'\n').ok_or_else(|| die(rest))?;
        let name = &rest[hex_len + 1..eol];
        if gix::validate::reference::name(name.as_bstr()).is_err() {
            bad.push(name.into());
        }
        rest = &rest[eol + 1..];
        if rest.first() == Some(&b'^') {
            if rest.len() < hex_len + 2 || !hex_at(&rest[1..]) || rest[hex_len + 1] != b'\n' {
                return Err(die(rest));
            }
            rest = &rest[hex_len + 2..];
        }
    }
    Ok(bad)
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
    for stored in iter {
        let (full, id, stored_peel, symref_target) = match stored {
            Stored::Ref(r) => {
                let r = gix::prelude::ReferenceExt::attach(r, repo);
                let full = r.name().as_bstr().to_owned();
                let stored_peel = r.inner.peeled;
                // Symbolic refs to missing or broken refs are left out, as git does.
                let Resolved::Id(id, target) = resolve(repo, r) else { continue };
                (full, id, stored_peel, target)
            }
            Stored::Corrupt(full) => (full, ObjectId::null(repo.object_hash()), None, None),
        };
        let Some(name) = strip(&full) else { continue };
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
            Resolved::Id(id, target) => {
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
            Resolved::Unborn(target) if !hidden => set.unborn_head = Some(strip(&target).unwrap_or(target)),
            Resolved::Unborn(_) | Resolved::Broken => {}
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
