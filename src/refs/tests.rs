//! Ref stores written by hand (loose files, `packed-refs`, damaged ones) read back.

use super::*;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const C: &str = "3333333333333333333333333333333333333333";
const HEADER: &str = "# pack-refs with: peeled fully-peeled sorted \n";

fn view(rules: &[&str], ns: Option<&str>) -> RefView {
    RefView { namespace: ns.map(Into::into), hide: rules.iter().map(|r| r.to_string()).collect() }
}

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).unwrap()
}

/// A git directory in a temp dir, removed on drop.
struct Store {
    dir: std::path::PathBuf,
}

impl Store {
    fn new(label: &str) -> Store {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("packserve-refs-unit-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("refs/heads")).unwrap();
        std::fs::create_dir_all(dir.join("refs/tags")).unwrap();
        std::fs::write(dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        Store { dir }
    }

    fn put(&self, name: &str, content: &str) -> &Store {
        let p = self.dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    fn packed(&self, body: &str) -> &Store {
        self.put("packed-refs", body)
    }

    fn read(&self, view: &RefView, scope: Scope) -> Result<Refs, RefsError> {
        let dirs = Dirs { git_dir: self.dir.clone(), common_dir: self.dir.clone() };
        Refs::read(&dirs, "./packed-refs", gix::hash::Kind::Sha1, view, scope)
    }

    fn all(&self) -> Refs {
        self.read(&RefView::default(), Scope::all(b"")).unwrap()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `name id [-> target] [^peeled|?]` lines for the entries.
fn listing(refs: &Refs) -> Vec<String> {
    refs.entries()
        .map(|e| {
            let e = e.unwrap();
            let mut s = format!("{} {}", String::from_utf8_lossy(e.name), &e.id.get().to_string()[..1]);
            if let Some(t) = e.symref_target {
                s.push_str(&format!(" -> {}", String::from_utf8_lossy(t)));
            }
            match e.peel {
                Peel::No => {}
                Peel::Stored(h) => s.push_str(&format!(" ^{}", &String::from_utf8_lossy(h)[..1])),
                Peel::Lookup => s.push_str(" ?"),
            }
            if e.hidden {
                s.push_str(" hidden");
            }
            s
        })
        .collect()
}

#[test]
fn hide_rules_like_git() {
    let v = view(&["refs/hidden", "!refs/hidden/shown", "refs/pull"], None);
    let hidden = |n: &str| v.is_hidden(n.as_bytes(), n.as_bytes());
    assert!(hidden("refs/hidden/x"));
    assert!(hidden("refs/hidden"));
    assert!(!hidden("refs/hiddenx"));
    assert!(!hidden("refs/hidden/shown"));
    assert!(!hidden("refs/hidden/shown/deeper"));
    assert!(hidden("refs/pull/1/head"));
    assert!(!hidden("refs/heads/main"));
}

#[test]
fn full_name_rules_with_namespaces() {
    let v = view(&["^refs/namespaces/foo/refs/tags"], Some("foo"));
    assert!(v.is_hidden(b"refs/tags/v1", b"refs/namespaces/foo/refs/tags/v1"));
    assert!(!v.is_hidden(b"refs/heads/main", b"refs/namespaces/foo/refs/heads/main"));
    let v = view(&["refs/tags"], Some("foo"));
    assert!(v.is_hidden(b"refs/tags/v1", b"refs/namespaces/foo/refs/tags/v1"));
}

#[test]
fn namespace_prefix() {
    assert_eq!(view(&[], None).prefix(), "");
    assert_eq!(view(&[], Some("foo")).prefix(), "refs/namespaces/foo/");
    assert_eq!(view(&[], Some("a/b")).prefix(), "refs/namespaces/a/refs/namespaces/b/");
}

#[test]
fn scopes() {
    let s = Scope::prefixes(b"", &["refs/tags/", "refs/heads/", "refs/heads/main", "HEAD"]);
    assert_eq!(s.prefixes, [&b"HEAD"[..], b"refs/heads/", b"refs/tags/"]);
    assert!(
        s.matches(b"HEAD") && s.matches(b"HEADS") && s.matches(b"refs/heads/x") && s.matches(b"refs/tags/v")
    );
    assert!(
        !s.matches(b"refs/heads")
            && !s.matches(b"refs/remotes/x")
            && !s.matches(b"A")
            && !s.matches(b"refs/u")
    );
    assert!(s.may_hold(b"refs/") && s.may_hold(b"refs/heads/") && s.may_hold(b"refs/heads/a/"));
    assert!(!s.may_hold(b"refs/remotes/") && !s.may_hold(b"refs/namespaces/"));
    assert_eq!(s.next_after(b"refs/heads/z"), Some(&b"refs/tags/"[..]));
    assert_eq!(s.next_after(b"refs/tags/z"), None);
    let all = Scope::prefixes::<&[u8]>(b"refs/namespaces/x/", &[]);
    assert!(all.matches(b"refs/namespaces/x/HEAD") && !all.matches(b"refs/namespaces/y/HEAD"));
    assert_eq!(Scope::prefixes(b"", &["", "refs/"]).prefixes, [Vec::<u8>::new()]);
    let partial = Scope::prefixes(b"", &["refs/heads/ma"]);
    assert!(
        partial.may_hold(b"refs/heads/")
            && !partial.may_hold(b"refs/heads/x/")
            && partial.may_hold(b"refs/heads/main/")
    );
}

#[test]
fn packed_and_loose_merge_loose_winning() {
    let s = Store::new("merge");
    s.packed(&format!(
        "{HEADER}{A} refs/heads/a\n{A} refs/heads/main\n{A} refs/tags/t\n^{B}\n{A} refs/tags/u\n"
    ));
    s.put("refs/heads/main", &format!("{B}\n"))
        .put("refs/heads/b", &format!("{C}\n"))
        .put("refs/tags/z", &format!("{C}\n"));
    assert_eq!(
        listing(&s.all()),
        [
            "refs/heads/a 1",
            "refs/heads/b 3 ?",
            "refs/heads/main 2 ?",
            "refs/tags/t 1 ^2",
            "refs/tags/u 1",
            "refs/tags/z 3 ?"
        ]
    );
    // A loose ref deleted while packed: the packed value.
    std::fs::remove_file(s.dir.join("refs/heads/main")).unwrap();
    assert_eq!(listing(&s.all())[2], "refs/heads/main 1");
}

#[test]
fn peeling_follows_the_header() {
    let s = Store::new("peel");
    s.packed(&format!(
        "# pack-refs with: peeled \n{A} refs/heads/a\n{A} refs/tags/t\n{A} refs/tags/u\n^{B}\n"
    ));
    assert_eq!(listing(&s.all()), ["refs/heads/a 1 ?", "refs/tags/t 1", "refs/tags/u 1 ^2"]);
    s.packed(&format!("{A} refs/tags/t\n{A} refs/heads/a\n"));
    assert_eq!(listing(&s.all()), ["refs/heads/a 1 ?", "refs/tags/t 1 ?"]);
}

#[test]
fn broken_refs_as_git_lists_them() {
    let s = Store::new("broken");
    s.packed(&format!("{HEADER}{A} refs/heads/main\n{A} refs/heads/z..bad\n^{B}\n{C} refs/heads/zz\n"));
    s.put("refs/heads/garbage", "garbage\n")
        .put("refs/heads/empty", "")
        .put("refs/heads/null", &format!("{}\n", "0".repeat(40)))
        .put("refs/heads/sym-ok", "ref: refs/heads/main\n")
        .put("refs/heads/sym-dangling", "ref: refs/heads/nothing\n")
        .put("refs/heads/sym-garbage", "ref: refs/heads/garbage\n")
        .put("refs/heads/sym-null", "ref: refs/heads/null\n")
        .put("refs/heads/sym-bad-name", "ref: refs/heads/a b\n")
        .put("refs/heads/bad name", &format!("{A}\n"));
    assert_eq!(
        listing(&s.all()),
        [
            "refs/heads/bad name 0",
            "refs/heads/empty 0",
            "refs/heads/garbage 0",
            "refs/heads/main 1",
            "refs/heads/null 0",
            "refs/heads/sym-ok 1 -> refs/heads/main ?",
            "refs/heads/z..bad 0",
            "refs/heads/zz 3",
        ]
    );
}

#[test]
fn symref_chains_are_followed_five_reads_deep() {
    let s = Store::new("chains");
    s.put("refs/heads/main", &format!("{A}\n"))
        .put("refs/heads/s1", "ref: refs/heads/main\n")
        .put("refs/heads/s2", "ref: refs/heads/s1\n")
        .put("refs/heads/s3", "ref: refs/heads/s2\n")
        .put("refs/heads/s4", "ref: refs/heads/s3\n")
        .put("refs/heads/s5", "ref: refs/heads/s4\n")
        .put("refs/heads/loop", "ref: refs/heads/loop\n");
    std::fs::write(s.dir.join("HEAD"), "ref: refs/heads/s3\n").unwrap();
    let refs = s.all();
    assert_eq!(
        listing(&refs),
        [
            "refs/heads/main 1 ?",
            "refs/heads/s1 1 -> refs/heads/main ?",
            "refs/heads/s2 1 -> refs/heads/main ?",
            "refs/heads/s3 1 -> refs/heads/main ?",
            "refs/heads/s4 1 -> refs/heads/main ?",
        ]
    );
    assert_eq!(refs.head(), Some((id(A), Some(&b"refs/heads/main"[..]))));
    std::fs::write(s.dir.join("HEAD"), "ref: refs/heads/s4\n").unwrap();
    assert_eq!(s.all().head(), None);
}

#[test]
fn head_as_v0_and_ls_refs_see_it() {
    let s = Store::new("head");
    let read_head = |content: &str| {
        std::fs::write(s.dir.join("HEAD"), content).unwrap();
        let refs = s.all();
        (
            refs.head().map(|(id, t)| (id.to_string()[..1].to_owned(), t.map(|t| t.to_vec()))),
            refs.unborn_head().map(<[u8]>::to_vec),
        )
    };
    s.put("refs/heads/main", &format!("{A}\n")).put("refs/heads/null", &format!("{}\n", "0".repeat(40)));
    s.put("refs/heads/garbage", "x\n");
    assert_eq!(
        read_head("ref: refs/heads/main\n"),
        (Some(("1".into(), Some(b"refs/heads/main".to_vec()))), None)
    );
    assert_eq!(read_head(&format!("{B}\n")), (Some(("2".into(), None)), None));
    assert_eq!(read_head("ref: refs/heads/unborn\n"), (None, Some(b"refs/heads/unborn".to_vec())));
    assert_eq!(
        read_head("ref: refs/heads/null\n"),
        (Some(("0".into(), Some(b"refs/heads/null".to_vec()))), Some(b"refs/heads/null".to_vec()))
    );
    assert_eq!(read_head("ref: refs/heads/garbage\n"), (None, None));
    assert_eq!(read_head("garbage\n"), (None, None));
    // A directory where the branch would be: unborn for ls-refs, as in git.
    std::fs::create_dir_all(s.dir.join("refs/heads/dir/x")).unwrap();
    assert_eq!(read_head("ref: refs/heads/dir\n"), (None, Some(b"refs/heads/dir".to_vec())));
    // HEAD packed (a detached HEAD in packed-refs is possible): read from there.
    std::fs::remove_file(s.dir.join("HEAD")).unwrap();
    s.packed(&format!("{C} HEAD\n{A} refs/heads/main\n"));
    assert_eq!(s.all().head(), Some((id(C), None)));
}

#[test]
fn directory_file_conflicts() {
    let s = Store::new("df");
    s.packed(&format!("{HEADER}{A} refs/heads/a\n{A} refs/heads/b/c\n"));
    s.put("refs/heads/a/x", &format!("{B}\n")).put("refs/heads/b", &format!("{C}\n"));
    s.put("refs/heads/to-a", "ref: refs/heads/a\n").put("refs/heads/to-bc", "ref: refs/heads/b/c\n");
    // refs/heads/a: packed, with a loose directory in the way (read from packed-refs);
    // refs/heads/b/c: packed, but refs/heads/b is a file (ENOTDIR: git does not look further).
    assert_eq!(
        listing(&s.all()),
        [
            "refs/heads/a 1",
            "refs/heads/a/x 2 ?",
            "refs/heads/b 3 ?",
            "refs/heads/b/c 1",
            "refs/heads/to-a 1 -> refs/heads/a ?"
        ]
    );
}

#[test]
fn namespaces_and_hidden_refs() {
    let s = Store::new("ns");
    s.packed(&format!(
        "{HEADER}{A} refs/heads/main\n{A} refs/namespaces/foo/HEAD\n{B} refs/namespaces/foo/refs/heads/dev\n{C} refs/namespaces/foo/refs/tags/v1\n{A} refs/namespaces/foox/refs/heads/no\n"
    ));
    s.put("refs/namespaces/foo/refs/heads/main", &format!("{C}\n"));
    let v = view(&["refs/tags", "^refs/namespaces/foo/refs/heads/dev"], Some("foo"));
    let refs = s.read(&v, Scope::all(b"refs/namespaces/foo/")).unwrap();
    assert_eq!(listing(&refs), ["refs/heads/dev 2 hidden", "refs/heads/main 3 ?", "refs/tags/v1 3 hidden"]);
    assert_eq!(refs.head(), Some((id(A), None)));
    assert_eq!(refs.strip(b"refs/namespaces/foo/refs/heads/x"), b"refs/heads/x");
    assert_eq!(refs.strip(b"refs/heads/x"), b"refs/heads/x");
    // ls-refs without prefixes: the namespace's HEAD is a ref of it too.
    let refs = s.read(&v, Scope::prefixes::<&str>(b"refs/namespaces/foo/", &[])).unwrap();
    assert_eq!(listing(&refs)[0], "HEAD 1");
    let refs = s.read(&v, Scope::prefixes(b"refs/namespaces/foo/", &["refs/heads/m"])).unwrap();
    assert_eq!(listing(&refs), ["refs/heads/main 3 ?"]);
}

#[test]
fn prefixes_read_only_their_part() {
    let s = Store::new("prefix");
    let mut packed = String::from(HEADER);
    for i in 0..300 {
        packed.push_str(&format!("{A} refs/heads/b{i:03}\n"));
        packed.push_str(&format!("{A} refs/pull/{i:03}/head\n"));
        packed.push_str(&format!("{A} refs/tags/t{i:03}\n"));
    }
    let mut lines: Vec<&str> = packed.lines().skip(1).collect();
    lines.sort();
    s.packed(&format!("{HEADER}{}\n", lines.join("\n")));
    s.put("refs/remotes/origin/x", "garbage");
    let refs =
        s.read(&RefView::default(), Scope::prefixes(b"", &["refs/tags/t1", "refs/heads/b29"])).unwrap();
    let l = listing(&refs);
    assert_eq!(l.len(), 110);
    assert_eq!(l[0], "refs/heads/b290 1");
    assert_eq!(l[10], "refs/tags/t100 1");
    assert!(refs.loose.is_empty());
}

#[test]
fn dangerous_packed_name_fails_when_listed() {
    let s = Store::new("dangerous");
    s.packed(&format!("{A} refs/heads/../../x\n{A} refs/heads/main\n"));
    let refs = s.all();
    let err = refs.entries().find_map(Result::err).unwrap();
    assert_eq!(err.to_string(), "packed refname is dangerous: refs/heads/../../x");
    // Out of scope, it is not read.
    let refs = s.read(&RefView::default(), Scope::prefixes(b"", &["refs/tags/"])).unwrap();
    assert_eq!(refs.entries().count(), 0);
}

#[test]
fn unparsable_packed_refs_fail_before_anything_is_listed() {
    let s = Store::new("unparsable");
    s.packed(&format!("{HEADER}{A} refs/heads/main\ngarbage\n"));
    match s.read(&RefView::default(), Scope::prefixes(b"", &["refs/heads/"])) {
        Err(e) => assert_eq!(e.to_string(), "unexpected line in ./packed-refs: garbage"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn crlf_and_long_names() {
    let s = Store::new("crlf");
    let long = format!("refs/heads/{}", "x".repeat(2000));
    s.packed(&format!("{A} refs/heads/crlf\r\n{B} {long}\n"));
    s.put("refs/heads/loose-crlf", &format!("{C}\r\n"));
    let l = listing(&s.all());
    assert_eq!(l[0], "refs/heads/crlf\r 0");
    assert_eq!(l[1], "refs/heads/loose-crlf 3 ?");
    assert_eq!(l[2], format!("{long} 2 ?"));
}

#[test]
fn damaged_stores_never_panic() {
    let s = Store::new("damaged");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces =
        [A, B, " ", "\n", "\r\n", "^", "#", "ref: ", "refs/heads/x", "refs/tags/", "..", "\0", "\t", "zz"];
    for round in 0..200 {
        let mut text = String::new();
        if round % 2 == 0 {
            text.push_str(HEADER);
        }
        for _ in 0..(next() % 12) {
            text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        s.packed(&text);
        let mut loose = String::new();
        for _ in 0..(next() % 6) {
            loose.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        s.put("refs/heads/x", &loose);
        std::fs::write(s.dir.join("HEAD"), &loose).unwrap();
        for scope in [
            Scope::all(b""),
            Scope::prefixes(b"", &["refs/heads/", "HEAD"]),
            Scope::prefixes::<&str>(b"", &[]),
        ] {
            if let Ok(refs) = s.read(&view(&["refs/tags"], None), scope) {
                let _ = (refs.head(), refs.unborn_head());
                for e in refs.entries() {
                    let _ = e.map(|e| (e.name.len(), e.peel));
                }
            }
        }
    }
}
