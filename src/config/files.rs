//! The configuration read without gix, for the common case: a repository's own `config`
//! with the system and global files, no includes and no command-line values. Opening a
//! repository through gix (its whole configuration, ref store and object store) costs more
//! than serving a small ref listing; this reads the same files gix reads, in the same order,
//! with git's parser (`config.c`) limited to what it can read with certainty. A file with
//! anything else in it (an include, a backslash, a carriage return, a legacy `[section.sub]`
//! header, a syntax error, ...), a repository format gix might refuse and values set in the
//! environment are left to gix: [`read_plain`] returns `None` and the caller opens the
//! repository as before.

use std::path::{Path, PathBuf};

use gix::bstr::BString;

use super::{Entries, Entry, Origin};

/// What [`read_plain`] read.
#[derive(Debug)]
pub(crate) struct Plain {
    /// Every value, as [`Entries::of_repo`] would give them.
    pub entries: Entries,
    /// The repository's object format.
    pub hash: gix::hash::Kind,
}

/// Reads the configuration of the repository at `git_dir` (absolute; its own common
/// directory) as gix would with no `overrides`; `None` when that needs gix (see the module).
pub(crate) fn read_plain(git_dir: &Path, overrides: &[String]) -> Option<Plain> {
    if !overrides.is_empty()
        || std::env::var_os("GIT_CONFIG_COUNT").is_some()
        || std::fs::symlink_metadata(git_dir.join("commondir")).is_ok()
    {
        return None;
    }
    let mut paths = global_paths()?;
    let local = git_dir.join("config");
    if paths.contains(&local) {
        return None;
    }
    let first_local = paths.len();
    paths.push(local);
    let mut entries = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        let shown = match path.strip_prefix(git_dir) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        };
        let origin = Origin::File { shown, path: path.clone() };
        let start = entries.len();
        parse(&text, |key, value| {
            entries.push(Entry {
                key,
                value: value.map(BString::from),
                origin: origin.clone(),
                index_in_file: entries.len() - start,
            })
        })?;
        if i == first_local && !local_format_is_plain(&entries[start..]) {
            return None;
        }
    }
    if entries.iter().any(|e| e.key == "core.worktree") {
        return None;
    }
    let is_local = |e: &&Entry| matches!(&e.origin, Origin::File { path, .. } if *path == paths[first_local]);
    let hash = match entries.iter().rfind(|e| is_local(e) && e.key == "extensions.objectformat") {
        None => gix::hash::Kind::Sha1,
        Some(e) => match e.value.as_ref().map(|v| v.as_slice()) {
            Some(b"sha1") => gix::hash::Kind::Sha1,
            Some(b"sha256") => gix::hash::Kind::Sha256,
            _ => return None,
        },
    };
    Some(Plain { entries: Entries(entries), hash })
}

/// The system and global files gix reads for a trusted repository (gix-config's
/// `Source::storage_location` for the system, XDG and home sources), each path once; `None`
/// when gix would read the system file only after parsing `GIT_CONFIG_NOSYSTEM`, or would find
/// the home directory in the password database (no `HOME`).
fn global_paths() -> Option<Vec<PathBuf>> {
    if std::env::var_os("GIT_CONFIG_NOSYSTEM").is_some() {
        return None;
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let system = var("GIT_CONFIG_SYSTEM").unwrap_or_else(|| "/etc/gitconfig".into());
    let (xdg, user) = match var("GIT_CONFIG_GLOBAL") {
        Some(global) => (global.clone(), global),
        None => (
            var("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config")).join("git").join("config"),
            home.join(".gitconfig"),
        ),
    };
    let mut paths = Vec::with_capacity(4);
    for p in [system, xdg, user] {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    Some(paths)
}

/// Whether the repository's own values are ones gix opens without a question: format version 0
/// or 1 (an object format only with 1), no extension but the object format, no
/// `core.precomposeUnicode` (which gix applies to paths).
fn local_format_is_plain(local: &[Entry]) -> bool {
    let last = |key: &str| local.iter().rev().find(|e| e.key == key);
    let version = match last("core.repositoryformatversion").map(|e| e.value.as_ref().map(|v| v.as_slice())) {
        None | Some(Some(b"0")) => 0,
        Some(Some(b"1")) => 1,
        Some(_) => return false,
    };
    let extensions_ok = local
        .iter()
        .filter(|e| e.key.starts_with("extensions."))
        .all(|e| e.key == "extensions.objectformat" && version == 1);
    extensions_ok && last("core.precomposeunicode").is_none()
}

/// git's `iskeychar`.
fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Calls `push` with each value of a config file (key as git spells it to its callbacks:
/// `section[.subsection].name`, section and name lowercased; the value, `None` for a key
/// without `=`), reading as git's `git_parse_source` does; `None` when the text has something
/// this reader leaves to gix.
fn parse(text: &[u8], mut push: impl FnMut(String, Option<Vec<u8>>)) -> Option<()> {
    if text.iter().any(|&b| matches!(b, b'\\' | b'\r' | 0)) || text.starts_with(b"\xef\xbb\xbf") {
        return None;
    }
    let mut i = 0;
    let mut section: Option<String> = None;
    while i < text.len() {
        let c = text[i];
        i += 1;
        match c {
            b'\n' | b' ' | b'\t' => {}
            b'#' | b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' => {
                let (name, end) = header(text, i)?;
                if name == "include"
                    || name == "includeif"
                    || name.starts_with("include.")
                    || name.starts_with("includeif.")
                {
                    return None;
                }
                section = Some(name);
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let section = section.as_deref()?;
                let start = i - 1;
                while i < text.len() && is_key_char(text[i]) {
                    i += 1;
                }
                let name = std::str::from_utf8(&text[start..i]).ok()?.to_ascii_lowercase();
                while i < text.len() && matches!(text[i], b' ' | b'\t') {
                    i += 1;
                }
                let value = match text.get(i) {
                    None | Some(b'\n') => None,
                    Some(b'=') => {
                        let (v, end) = value(text, i + 1)?;
                        i = end;
                        Some(v)
                    }
                    Some(_) => return None,
                };
                push(format!("{section}.{name}"), value);
            }
            _ => return None,
        }
    }
    Some(())
}

/// A section header from just after its `[`: `name` or `name "subsection"` (the legacy
/// `name.subsection` form is left to gix). Returns `section` or `section.subsection` (section
/// lowercased) and where the text goes on.
fn header(text: &[u8], mut i: usize) -> Option<(String, usize)> {
    let start = i;
    while i < text.len() && is_key_char(text[i]) {
        i += 1;
    }
    let name = std::str::from_utf8(&text[start..i]).ok()?.to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    match text.get(i)? {
        b']' => Some((name, i + 1)),
        b' ' | b'\t' => {
            while matches!(text.get(i)?, b' ' | b'\t') {
                i += 1;
            }
            if text[i] != b'"' {
                return None;
            }
            let sub_start = i + 1;
            let sub_len = text[sub_start..].iter().position(|&b| b == b'"' || b == b'\n')?;
            let sub_end = sub_start + sub_len;
            if text[sub_end] != b'"' || text.get(sub_end + 1) != Some(&b']') {
                return None;
            }
            let sub = std::str::from_utf8(&text[sub_start..sub_end]).ok()?;
            Some((format!("{name}.{sub}"), sub_end + 2))
        }
        _ => None,
    }
}

/// git's `parse_value` from just after the `=`: quotes removed, comments dropped, leading and
/// trailing blanks outside quotes dropped, inner ones kept. Returns the value and where the
/// text goes on (after the line's end). An unterminated quote is left to gix (git dies on it).
fn value(text: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut v = Vec::new();
    let (mut quote, mut comment, mut trim_len) = (false, false, 0);
    loop {
        let c = text.get(i).copied().unwrap_or(b'\n');
        i += 1;
        if c == b'\n' {
            if quote {
                return None;
            }
            if trim_len > 0 {
                v.truncate(trim_len);
            }
            return Some((v, i));
        }
        if comment {
            continue;
        }
        if matches!(c, b' ' | b'\t') && !quote {
            if trim_len == 0 {
                trim_len = v.len();
            }
            if !v.is_empty() {
                v.push(c);
            }
            continue;
        }
        if !quote && matches!(c, b';' | b'#') {
            comment = true;
            continue;
        }
        trim_len = 0;
        if c == b'"' {
            quote = !quote;
            continue;
        }
        v.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Option<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        parse(text.as_bytes(), |k, v| out.push((k, v.map(|v| String::from_utf8(v).unwrap()))))?;
        Some(out)
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn reads_as_git_reads() {
        let text = "[t]\n\ta = x\t\ty  \n\tb = \"q\t\" w \n\tc = p  ;c\n\td = \"a;b\"#x\n[t \"Sub\"]\n\te\n[T \"Sub\"] f = 1\n  G=  ;\nh=\"\"  \"\" k\n";
        assert_eq!(
            values(text).unwrap(),
            vec![
                kv("t.a", Some("x\t\ty")),
                kv("t.b", Some("q\t w")),
                kv("t.c", Some("p")),
                kv("t.d", Some("a;b")),
                kv("t.Sub.e", None),
                kv("t.Sub.f", Some("1")),
                kv("t.Sub.g", Some("")),
                kv("t.Sub.h", Some("k")),
            ]
        );
        assert_eq!(values("[a]\nb = c").unwrap(), vec![kv("a.b", Some("c"))]);
        assert_eq!(values("").unwrap(), vec![]);
        assert_eq!(values("# only\n; comments\n").unwrap(), vec![]);
    }

    /// Configurations read here give exactly what gix gives; the others are left to gix.
    #[test]
    fn same_values_as_gix() {
        let dir = std::env::temp_dir().join(format!("packserve-config-files-{}", std::process::id()));
        let git_dir = dir.join("r.git");
        for d in ["objects", "refs/heads"] {
            std::fs::create_dir_all(git_dir.join(d)).unwrap();
        }
        std::fs::write(git_dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let base = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";
        let read: &[&str] = &[
            "",
            "[remote \"origin\"]\n\turl = https://example.com/r.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
            "[uploadpack]\n\tallowFilter = \"maybe\"\n\tkeepAlive\n\thideRefs = refs/pull\n\thideRefs=refs/x/ \n",
            "[t]\n\ta = x\t\ty  \n\tb = \"q\t\" w \n\tc = p  ;c\n\td = \"a;b\"#x\n[t \"Sub\"]\n\te\n[T \"Sub\"] f = 1\n  G=  ;\nh=\"\"  \"\" k\n",
            "# comment\n; another\n\n[Section \"With Spaces\"]\n\tKey-1 = caf\u{e9} \u{1f600}\n\tkey2=\n[a-b]\n\tc = \"#;\"\n",
            "[pack]\n\twindow = 0x10\n\tdepth = 2k\n[lsrefs]\n\tunborn = ignore\n[transfer]\n\thideRefs = !refs/keep\n",
            "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectformat = sha256\n",
            "[uploadpack]\nallowfilter",
        ];
        let left: &[&str] = &[
            "[include]\n\tpath = other\n",
            "[core]\n\tworktree = /tmp\n",
            "[extensions]\n\tworktreeConfig = true\n",
            "[core]\n\trepositoryformatversion = 2\n",
            "[core]\n\tprecomposeUnicode = true\n",
            "[a.b]\n\tc = d\n",
            "[a]\n\tb = c\\\n d\n",
        ];
        let gix_entries = || {
            let opts = gix::open::Options::default()
                .with(gix::sec::Trust::Full)
                .strict_config(false)
                .open_path_as_is(true);
            Entries::of_repo(&gix::open_opts(&git_dir, opts).unwrap())
        };
        for (i, extra) in read.iter().chain(left).enumerate() {
            let text = if extra.contains("repositoryformatversion") {
                extra.to_string()
            } else {
                format!("{base}{extra}")
            };
            std::fs::write(git_dir.join("config"), &text).unwrap();
            let plain = read_plain(&git_dir, &[]);
            if i < read.len() {
                let plain = plain.unwrap_or_else(|| panic!("left to gix: {text:?}"));
                assert_eq!(plain.entries.0, gix_entries().0, "{text:?}");
                let hash =
                    if text.contains("sha256") { gix::hash::Kind::Sha256 } else { gix::hash::Kind::Sha1 };
                assert_eq!(plain.hash, hash);
            } else {
                assert!(plain.is_none(), "read: {text:?}");
            }
        }
        std::fs::write(git_dir.join("config"), base).unwrap();
        assert!(read_plain(&git_dir, &["a.b=c".into()]).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leaves_the_rest_to_gix() {
        for text in [
            "a = b\n",
            "[a.b]\nc = d\n",
            "[a]\nb = \"c\n",
            "[a]\nb = c\\\nd\n",
            "[a]\r\nb = c\r\n",
            "[include]\npath = x\n",
            "[includeIf \"gitdir:/x\"]\npath = y\n",
            "[a]\nb ; c\n",
            "[a]\n1b = c\n",
            "[]\n",
            "[a \"b\" ]\n",
            "[a \"b\nc\"]\n",
            "[a\n",
            "\u{feff}[a]\n",
            "[a]\nb = \0\n",
        ] {
            assert_eq!(values(text), None, "{text:?}");
        }
    }
}
