//! Partial clone filter specs (`--filter=`): parsing with git's messages, and the decisions the
//! object walk asks for. Explicitly wanted objects are never filtered out (git's default of not
//! filtering "provided objects").

use gix::objs::Kind;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`
    BlobNone,
    /// `blob:limit=<n>`: blobs of at least n bytes are omitted.
    BlobLimit(u64),
    /// `tree:<depth>`: trees and blobs at depth >= n below a root tree are omitted.
    TreeDepth(u64),
    /// `object:type=<type>`: only objects of this type are sent.
    ObjectType(Kind),
    /// `sparse:oid=<blob-ish>`: blobs outside the sparse patterns are omitted.
    SparseOid(String),
    /// `combine:<a>+<b>`: what every sub-filter keeps.
    Combine(Vec<Filter>),
}

/// Filter spec errors, worded as git words them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("invalid filter-spec '{0}'")]
    Invalid(String),
    #[error("expected 'tree:<depth>'")]
    TreeDepth,
    #[error("sparse:path filters support has been dropped")]
    SparsePath,
    #[error("'{0}' for 'object:type=<type>' is not a valid object type")]
    ObjectType(String),
    #[error("expected something after combine:")]
    EmptyCombine,
    #[error("must escape char in sub-filter-spec: '{0}'")]
    MustEscape(char),
    #[error("filter '{0}' not supported")]
    NotAllowed(String),
    #[error("tree filter allows max depth {max}, but got {got}")]
    TooDeep { max: u64, got: u64 },
}

/// git's `git_parse_ulong`: a number (decimal, 0x hex, 0 octal) with an optional k/m/g unit.
fn parse_ulong(s: &str) -> Option<u64> {
    let s = s.trim_start();
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let (num, factor) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n = if let Some(h) = num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if num.len() > 1 && num.starts_with('0') {
        u64::from_str_radix(&num[1..], 8).ok()?
    } else {
        num.parse().ok()?
    };
    n.checked_mul(factor)
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Bytes, not `&s[..]`: a multi-byte character after `%` is no slicing point.
        if let (b'%', Some(&h), Some(&l)) = (b[i], b.get(i + 1), b.get(i + 2)) {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const RESERVED: &str = "~`!@#$^&*()[]{}\\;'\",<>?";

impl Filter {
    /// Parses a filter spec as the client sent it.
    pub fn parse(spec: &str) -> Result<Filter, FilterError> {
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(v) = spec.strip_prefix("blob:limit=") {
            if let Some(n) = parse_ulong(v) {
                return Ok(Filter::BlobLimit(n));
            }
        } else if let Some(v) = spec.strip_prefix("tree:") {
            return parse_ulong(v).map(Filter::TreeDepth).ok_or(FilterError::TreeDepth);
        } else if let Some(v) = spec.strip_prefix("sparse:oid=") {
            return Ok(Filter::SparseOid(v.to_owned()));
        } else if spec.starts_with("sparse:path=") {
            return Err(FilterError::SparsePath);
        } else if let Some(v) = spec.strip_prefix("object:type=") {
            return Kind::from_bytes(v.as_bytes())
                .map(Filter::ObjectType)
                .map_err(|_| FilterError::ObjectType(v.to_owned()));
        } else if let Some(v) = spec.strip_prefix("combine:") {
            if v.is_empty() {
                return Err(FilterError::EmptyCombine);
            }
            let mut subs = Vec::new();
            for part in v.split('+') {
                if let Some(c) = part.chars().find(|c| RESERVED.contains(*c)) {
                    return Err(FilterError::MustEscape(c));
                }
                let decoded = url_decode(part);
                subs.push(Filter::parse(&decoded)?);
            }
            return Ok(Filter::Combine(subs));
        }
        Err(FilterError::Invalid(spec.to_owned()))
    }

    /// git's config name of the filter choice (`uploadpackfilter.<name>.allow`).
    pub fn config_name(&self) -> &'static str {
        match self {
            Filter::BlobNone => "blob:none",
            Filter::BlobLimit(_) => "blob:limit",
            Filter::TreeDepth(_) => "tree",
            Filter::ObjectType(_) => "object:type",
            Filter::SparseOid(_) => "sparse:oid",
            Filter::Combine(_) => "combine",
        }
    }

    /// Checks the filter (and every sub-filter) against the server's rules.
    pub fn check(
        &self,
        allowed: &dyn Fn(&str) -> bool,
        tree_max_depth: Option<u64>,
    ) -> Result<(), FilterError> {
        if !allowed(self.config_name()) {
            return Err(FilterError::NotAllowed(self.config_name().to_owned()));
        }
        if let (Filter::TreeDepth(d), Some(max)) = (self, tree_max_depth) {
            if *d > max {
                return Err(FilterError::TooDeep { max, got: *d });
            }
        }
        if let Filter::Combine(subs) = self {
            for s in subs {
                s.check(allowed, tree_max_depth)?;
            }
        }
        Ok(())
    }

    /// Whether blob sizes are needed for decisions.
    pub fn needs_blob_size(&self) -> bool {
        match self {
            Filter::BlobLimit(_) => true,
            Filter::Combine(s) => s.iter().any(Filter::needs_blob_size),
            _ => false,
        }
    }

    /// Whether no blob found in a tree is ever sent, whatever its size, depth or path
    /// (`blob:none`, `blob:limit=0`, `object:type` other than blob, or a `combine:` with one of
    /// those): the walk then does not even look blob entries up.
    pub fn drops_every_blob(&self) -> bool {
        match self {
            Filter::BlobNone | Filter::BlobLimit(0) => true,
            Filter::ObjectType(t) => *t != Kind::Blob,
            Filter::Combine(s) => s.iter().any(Filter::drops_every_blob),
            Filter::BlobLimit(_) | Filter::TreeDepth(_) | Filter::SparseOid(_) => false,
        }
    }

    /// The smallest tree depth limit, if any (trees at or below it are not even walked).
    pub fn depth_limit(&self) -> Option<u64> {
        match self {
            Filter::TreeDepth(d) => Some(*d),
            Filter::Combine(s) => s.iter().filter_map(Filter::depth_limit).min(),
            _ => None,
        }
    }

    /// Whether an object of `kind` found at tree depth `depth` (root trees are at 0; commits and
    /// tags use 0) with `size` (blobs, when needed) and `sparse` (whether a sparse filter keeps
    /// the blob's path) is sent.
    pub fn keeps(&self, kind: Kind, depth: u64, size: u64, sparse: &dyn Fn() -> bool) -> bool {
        match self {
            Filter::BlobNone => kind != Kind::Blob,
            Filter::BlobLimit(n) => kind != Kind::Blob || size < *n,
            Filter::TreeDepth(n) => !matches!(kind, Kind::Tree | Kind::Blob) || depth < *n,
            Filter::ObjectType(t) => kind == *t,
            Filter::SparseOid(_) => kind != Kind::Blob || sparse(),
            Filter::Combine(s) => s.iter().all(|f| f.keeps(kind, depth, size, sparse)),
        }
    }

    /// Whether the filter decides by object type and blob size alone (no tree depth but 0, no
    /// paths), so that a reachability bitmap's answer can be filtered object by object, as git's
    /// bitmap filters do (`blob:none`, `blob:limit`, `tree:0`, `object:type`, and `combine:` of
    /// those).
    pub fn decides_by_type(&self) -> bool {
        match self {
            Filter::BlobNone | Filter::BlobLimit(_) | Filter::ObjectType(_) | Filter::TreeDepth(0) => true,
            Filter::Combine(s) => s.iter().all(Filter::decides_by_type),
            Filter::TreeDepth(_) | Filter::SparseOid(_) => false,
        }
    }

    /// The sparse spec (`sparse:oid=` value) if any sub-filter has one.
    pub fn sparse_spec(&self) -> Option<&str> {
        match self {
            Filter::SparseOid(s) => Some(s),
            Filter::Combine(s) => s.iter().find_map(Filter::sparse_spec),
            _ => None,
        }
    }
}

/// The resolved filter handed to the walk.
#[derive(Debug, Clone)]
pub struct ObjectFilter {
    /// The filter.
    pub filter: Filter,
    /// Sparse patterns, when the filter has `sparse:oid`.
    pub sparse: Option<SparsePatterns>,
}

/// A sparse-checkout pattern list (gitignore syntax, "include" meaning).
#[derive(Debug, Clone, Default)]
pub struct SparsePatterns {
    patterns: Vec<(gix::glob::Pattern, bool)>,
}

impl SparsePatterns {
    /// Parses the content of the sparse blob.
    pub fn parse(text: &[u8]) -> Self {
        let mut patterns = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let (neg, body) = match line.strip_prefix(b"!") {
                Some(b) => (true, b),
                None => (false, line),
            };
            if let Some(p) = gix::glob::Pattern::from_bytes(body) {
                patterns.push((p, neg));
            }
        }
        SparsePatterns { patterns }
    }

    /// The last pattern matching `path` decides: `Some(true)` included, `Some(false)` excluded.
    fn decide(&self, path: &[u8], is_dir: bool) -> Option<bool> {
        use gix::glob::wildmatch::Mode;
        let basename = path.iter().rposition(|&b| b == b'/').map(|p| p + 1);
        for (p, neg) in self.patterns.iter().rev() {
            if p.matches_repo_relative_path(
                path.into(),
                basename,
                Some(is_dir),
                gix::glob::pattern::Case::Sensitive,
                Mode::NO_MATCH_SLASH_LITERAL,
            ) {
                return Some(!neg);
            }
        }
        None
    }

    /// Whether a blob at `path` (slash-separated, from the root tree) is kept: its own match,
    /// else that of the nearest matching parent directory, else not.
    pub fn keeps(&self, path: &[u8]) -> bool {
        if let Some(d) = self.decide(path, false) {
            return d;
        }
        let mut end = path.len();
        while let Some(slash) = path[..end].iter().rposition(|&b| b == b'/') {
            if let Some(d) = self.decide(&path[..slash], true) {
                return d;
            }
            end = slash;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_every_blob_only_when_no_blob_can_be_kept() {
        for spec in [
            "blob:none",
            "blob:limit=0",
            "object:type=tree",
            "object:type=commit",
            "combine:tree:3+blob:none",
        ] {
            let f = Filter::parse(spec).unwrap();
            assert!(f.drops_every_blob(), "{spec}");
            assert!(!f.keeps(Kind::Blob, 1, 0, &|| true), "{spec}");
        }
        for spec in [
            "blob:limit=1",
            "tree:2",
            "object:type=blob",
            "sparse:oid=HEAD:s",
            "combine:tree:3+blob:limit=1k",
        ] {
            assert!(!Filter::parse(spec).unwrap().drops_every_blob(), "{spec}");
        }
    }

    #[test]
    fn parses_specs() {
        assert_eq!(Filter::parse("blob:none"), Ok(Filter::BlobNone));
        assert_eq!(Filter::parse("blob:limit=1k"), Ok(Filter::BlobLimit(1024)));
        assert_eq!(Filter::parse("blob:limit=0"), Ok(Filter::BlobLimit(0)));
        assert_eq!(Filter::parse("blob:limit=2M"), Ok(Filter::BlobLimit(2 << 20)));
        assert_eq!(Filter::parse("tree:0"), Ok(Filter::TreeDepth(0)));
        assert_eq!(Filter::parse("object:type=blob"), Ok(Filter::ObjectType(Kind::Blob)));
        assert_eq!(
            Filter::parse("combine:blob:none+tree:2"),
            Ok(Filter::Combine(vec![Filter::BlobNone, Filter::TreeDepth(2)]))
        );
        assert_eq!(
            Filter::parse("combine:sparse%3Aoid%3Dmain%3A.sparse+tree:1"),
            Ok(Filter::Combine(vec![Filter::SparseOid("main:.sparse".into()), Filter::TreeDepth(1)]))
        );
    }

    #[test]
    fn multibyte_after_percent_is_no_escape() {
        // Found by fuzzing (v0_request): slicing the str at `%` + 2 bytes panicked.
        assert_eq!(Filter::parse("combine:blob:none+%\u{e9}"), Err(FilterError::Invalid("%\u{e9}".into())));
        assert_eq!(Filter::parse("combine:%e9"), Err(FilterError::Invalid("\u{fffd}".into())));
        assert_eq!(Filter::parse("combine:tree%3a1"), Ok(Filter::Combine(vec![Filter::TreeDepth(1)])));
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(Filter::parse("blob:limit=x"), Err(FilterError::Invalid("blob:limit=x".into())));
        assert_eq!(Filter::parse("tree:x"), Err(FilterError::TreeDepth));
        assert_eq!(Filter::parse("tree:-1"), Err(FilterError::TreeDepth));
        assert_eq!(Filter::parse("object:type=nope"), Err(FilterError::ObjectType("nope".into())));
        assert_eq!(Filter::parse("combine:"), Err(FilterError::EmptyCombine));
        assert_eq!(Filter::parse("combine:a~b"), Err(FilterError::MustEscape('~')));
        assert_eq!(Filter::parse("wat"), Err(FilterError::Invalid("wat".into())));
        assert_eq!(Filter::parse("sparse:path=x"), Err(FilterError::SparsePath));
    }

    #[test]
    fn checks_rules() {
        let f = Filter::parse("combine:blob:none+tree:5").unwrap();
        assert_eq!(f.check(&|_| true, Some(3)), Err(FilterError::TooDeep { max: 3, got: 5 }));
        assert_eq!(f.check(&|n| n != "tree", None), Err(FilterError::NotAllowed("tree".into())));
        assert!(f.check(&|_| true, None).is_ok());
    }

    #[test]
    fn keeps_decisions() {
        let none = &|| true;
        assert!(!Filter::BlobNone.keeps(Kind::Blob, 1, 5, none));
        assert!(Filter::BlobNone.keeps(Kind::Tree, 1, 5, none));
        assert!(Filter::BlobLimit(10).keeps(Kind::Blob, 1, 9, none));
        assert!(!Filter::BlobLimit(10).keeps(Kind::Blob, 1, 10, none));
        assert!(!Filter::TreeDepth(0).keeps(Kind::Tree, 0, 0, none));
        assert!(Filter::TreeDepth(1).keeps(Kind::Tree, 0, 0, none));
        assert!(!Filter::TreeDepth(1).keeps(Kind::Blob, 1, 0, none));
        assert!(Filter::TreeDepth(0).keeps(Kind::Commit, 0, 0, none));
        assert!(!Filter::ObjectType(Kind::Blob).keeps(Kind::Commit, 0, 0, none));
    }

    #[test]
    fn sparse_patterns() {
        let p = SparsePatterns::parse(b"/*\n!/*/\n/src/\n");
        assert!(p.keeps(b"README"));
        assert!(p.keeps(b"src/main.rs"));
        assert!(!p.keeps(b"docs/x.md"));
    }
}
