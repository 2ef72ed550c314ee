//! The configuration keys packserve honours, read once per connection the way git reads them
//! (system, global, repository, `GIT_CONFIG_COUNT`/`GIT_CONFIG_PARAMETERS` overrides), turned
//! into one plain value. No key ever makes packserve run a program.

use std::time::Duration;

mod files;

pub(crate) use files::read_plain;

/// Which unadvertised objects a client may want (git's `allow_uor` bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowUnadvertised {
    /// `uploadpack.allowTipSHA1InWant`: tips of hidden refs.
    pub tip: bool,
    /// `uploadpack.allowReachableSHA1InWant`: anything reachable from any ref.
    pub reachable: bool,
    /// `uploadpack.allowAnySHA1InWant`: any object.
    pub any: bool,
}

/// `uploadpackfilter.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterConfig {
    /// `uploadpackfilter.allow` (default true).
    pub allow_fallback: bool,
    /// `uploadpackfilter.<filter>.allow` entries, by filter name (`blob:none`, `tree`, ...).
    pub allowed: Vec<(String, bool)>,
    /// `uploadpackfilter.tree.maxDepth`.
    pub tree_max_depth: Option<u64>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig { allow_fallback: true, allowed: Vec::new(), tree_max_depth: None }
    }
}

impl FilterConfig {
    /// Whether the filter named `name` (git's config name of a filter choice) is allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.allowed.iter().rev().find(|(n, _)| n == name).map_or(self.allow_fallback, |(_, a)| *a)
    }
}

/// Bounds on what one client may ask, so that a hostile request ends in a clear error rather
/// than in unbounded memory or time. The defaults are far above what real clients send (see
/// docs/configuration.md, "Limits and hostile input"); `packserve.*` keys and the plain form's `--max-*` flags change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `packserve.maxRequestBytes`: bytes of pkt-lines in one request (a v2 command request,
    /// the v0 want section, one v0 round of haves).
    pub max_request_bytes: u64,
    /// `packserve.maxWants`: `want` and `want-ref` lines in one request.
    pub max_wants: u64,
    /// `packserve.maxHaves`: `have` lines in one v2 or stateless request, or in one stateful
    /// v0/v1 connection.
    pub max_haves: u64,
    /// `packserve.maxDepth`: the largest `deepen <n>`.
    pub max_depth: u64,
    /// `packserve.maxFilterDepth`: the largest `tree:<depth>` filter (git's
    /// `uploadpackfilter.tree.maxDepth` applies too; the smaller wins).
    pub max_filter_depth: Option<u64>,
}

impl Limits {
    /// 64 MiB: a million sha1 `want` lines (50 bytes each) fit.
    pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 64 << 20;
    /// A million: ten times the wants of a mirror clone of a repository with 100k refs.
    pub const DEFAULT_MAX_WANTS: u64 = 1_000_000;
    /// Four million: a client whose history shares nothing with ours sends all of it; the
    /// largest public histories have under two million commits.
    pub const DEFAULT_MAX_HAVES: u64 = 4_000_000;
    /// git's own maximum (`INFINITE_DEPTH`), which `git fetch --unshallow` sends.
    pub const DEFAULT_MAX_DEPTH: u64 = i32::MAX as u64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
            max_wants: Self::DEFAULT_MAX_WANTS,
            max_haves: Self::DEFAULT_MAX_HAVES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_filter_depth: None,
        }
    }
}

/// Limits given on the command line; each one set replaces the configured value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `--max-request-bytes`.
    pub max_request_bytes: Option<u64>,
    /// `--max-wants`.
    pub max_wants: Option<u64>,
    /// `--max-haves`.
    pub max_haves: Option<u64>,
    /// `--max-depth`.
    pub max_depth: Option<u64>,
    /// `--max-filter-depth`.
    pub max_filter_depth: Option<u64>,
}

impl LimitOverrides {
    /// Applies the overrides to `limits`.
    pub fn apply(&self, limits: &mut Limits) {
        let set = |v: Option<u64>, out: &mut u64| {
            if let Some(v) = v {
                *out = v;
            }
        };
        set(self.max_request_bytes, &mut limits.max_request_bytes);
        set(self.max_wants, &mut limits.max_wants);
        set(self.max_haves, &mut limits.max_haves);
        set(self.max_depth, &mut limits.max_depth);
        if self.max_filter_depth.is_some() {
            limits.max_filter_depth = self.max_filter_depth;
        }
    }
}

/// Everything a session reads from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// `transfer.hideRefs` and `uploadpack.hideRefs` values, in configuration order.
    pub hide_refs: Vec<String>,
    /// Unadvertised wants.
    pub allow: AllowUnadvertised,
    /// `uploadpack.allowFilter`.
    pub allow_filter: bool,
    /// `uploadpackfilter.*`.
    pub filter: FilterConfig,
    /// `uploadpack.allowRefInWant`.
    pub allow_ref_in_want: bool,
    /// `uploadpack.allowSidebandAll`.
    pub allow_sideband_all: bool,
    /// `transfer.advertiseObjectInfo`.
    pub advertise_object_info: bool,
    /// `transfer.advertiseSID`.
    pub advertise_sid: bool,
    /// `uploadpack.keepAlive` (default 5 seconds; 0 or less disables).
    pub keepalive: Option<Duration>,
    /// `lsrefs.unborn`.
    pub unborn: Unborn,
    /// `pack.useBitmaps` (default true).
    pub use_bitmaps: bool,
    /// `packserve.max*`.
    pub limits: Limits,
    /// `packserve.bitmapDeltaSearch`: search thin deltas for objects stored whole when counting
    /// with bitmaps (default false, as git).
    pub bitmap_delta_search: bool,
    /// `pack.window`: objects each object written anew is compared with (default 10).
    pub pack_window: usize,
    /// `pack.depth`: longest chain of new deltas (default 50, at most 4095 as in git).
    pub pack_depth: u32,
    /// `uploadpack.advertiseBundleURIs`: advertise the v2 `bundle-uri` command.
    pub advertise_bundle_uris: bool,
    /// Every `bundle.*` key with a value, in configuration order, as git's `bundle-uri` command
    /// sends them: the key with its section and name lowercased (the subsection as written),
    /// and the value.
    pub bundle_list: Vec<(String, String)>,
    /// `uploadpack.blobPackfileUri` values (`<object-id> <pack-hash> <uri>`), as written; parsed
    /// when a client asks for `packfile-uris` ([`BlobPackfileUri::parse_all`]).
    pub blob_packfile_uris: Vec<String>,
    /// `packserve.cache.*`: the response cache shared by the host's processes.
    pub cache: crate::host::CacheConfig,
    /// `packserve.limit.*`: admission control shared by the host's processes.
    pub admission: crate::host::LimitConfig,
    /// Values git would die on, in the order git reads them; each ends the session where git
    /// reads its key (see [`ServeConfig::check`]).
    pub errors: Vec<ConfigError>,
}

/// One `uploadpack.blobPackfileUri` entry: the object that a pack at `uri` (whose hash, as
/// `index-pack` prints it, is `pack_hash`) holds, so that it can be left out of the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPackfileUri {
    /// The object left out.
    pub object: gix::hash::ObjectId,
    /// The hash of the pack at `uri`, in hex.
    pub pack_hash: String,
    /// Where the client downloads that pack.
    pub uri: String,
}

impl BlobPackfileUri {
    /// Parses every value (git's format and messages); an object named twice is an error, as
    /// in git's pack-objects.
    pub fn parse_all(values: &[String], hash: gix::hash::Kind) -> Result<Vec<BlobPackfileUri>, String> {
        let mut out: Vec<BlobPackfileUri> = Vec::with_capacity(values.len());
        let hex_len = hash.len_in_hex();
        for v in values {
            let bad = || {
                format!(
                    "value of uploadpack.blobpackfileuri must be of the form '<object-hash> <pack-hash> <uri>' (got '{v}')"
                )
            };
            let mut parts = v.splitn(3, ' ');
            let (Some(obj), Some(pack), Some(uri)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad());
            };
            let is_hex = |s: &str| s.len() == hex_len && s.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex(obj) || !is_hex(pack) {
                return Err(bad());
            }
            let object = gix::hash::ObjectId::from_hex(obj.as_bytes()).map_err(|_| bad())?;
            if out.iter().any(|e| e.object == object) {
                return Err(format!(
                    "object already configured in another uploadpack.blobpackfileuri (got '{v}')"
                ));
            }
            out.push(BlobPackfileUri { object, pack_hash: pack.to_ascii_lowercase(), uri: uri.to_owned() });
        }
        Ok(out)
    }

    /// Whether the URI is of one of the client's `protocols` (`http`, `https`): it starts with
    /// `<protocol>:`, as git's pack-objects checks.
    pub fn offered_for(&self, protocols: &[String]) -> bool {
        protocols.iter().any(|p| self.uri.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with(':')))
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            hide_refs: Vec::new(),
            allow: AllowUnadvertised::default(),
            allow_filter: false,
            filter: FilterConfig::default(),
            allow_ref_in_want: false,
            allow_sideband_all: false,
            advertise_object_info: false,
            advertise_sid: false,
            keepalive: Some(Duration::from_secs(5)),
            unborn: Unborn::Advertise,
            use_bitmaps: true,
            limits: Limits::default(),
            bitmap_delta_search: false,
            errors: Vec::new(),
            pack_window: 10,
            pack_depth: 50,
            advertise_bundle_uris: false,
            bundle_list: Vec::new(),
            blob_packfile_uris: Vec::new(),
            cache: Default::default(),
            admission: Default::default(),
        }
    }
}

/// `lsrefs.unborn`: whether v2 `ls-refs` tells where an unborn HEAD points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unborn {
    /// Advertised (`ls-refs=unborn`) and answered (the default).
    Advertise,
    /// Answered when asked, not advertised.
    Allow,
    /// Neither: the `unborn` argument is accepted and ignored.
    Ignore,
}

/// Where git reads a key, which decides when a malformed value of it ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// upload-pack's own keys (git's `upload_pack_config`, and packserve's `packserve.*`): read
    /// when a v0/v1 session starts, and in v2 for the capability advertisement and `fetch`.
    UploadPack,
    /// `uploadpack.hideRefs` / `transfer.hideRefs`: with the upload-pack keys, and by `ls-refs`.
    HideRefs,
    /// `transfer.advertiseSID`: with the upload-pack keys, and when a v2 client sends
    /// `session-id=`.
    SessionId,
    /// `lsrefs.unborn`: the v2 advertisement, and `ls-refs` when the client asks `unborn`.
    Unborn,
    /// `transfer.advertiseObjectInfo`: the v2 advertisement and `command=object-info`.
    ObjectInfo,
    /// `core.commitGraph`: when objects are first read.
    Objects,
    /// `pack.useBitmaps`: when a pack is made (git's pack-objects reads it).
    Pack,
}

impl ReadAt {
    /// What git's upload-pack configuration callback reads: at the start of a v0/v1 session,
    /// for the v2 capability advertisement and for v2 `fetch`.
    pub const UPLOAD_PACK: &'static [ReadAt] = &[ReadAt::UploadPack, ReadAt::HideRefs, ReadAt::SessionId];
}

/// A configured value git dies on, with git's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// When git reads the key.
    pub at: ReadAt,
    /// A line git prints first (`error: missing value for '<key>'`), if any.
    pub error: Option<String>,
    /// git's fatal message, without `fatal: `.
    pub fatal: String,
}

impl ConfigError {
    /// What git writes on stderr: the `error:` line, if any, then `fatal: <message>`.
    pub fn stderr(&self) -> String {
        match &self.error {
            Some(e) => format!("error: {e}\nfatal: {}", self.fatal),
            None => format!("fatal: {}", self.fatal),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fatal)
    }
}

impl std::error::Error for ConfigError {}

impl ServeConfig {
    /// The first configuration error git would die on when it reads the keys of `at` (in
    /// configuration order).
    pub fn check(&self, at: &[ReadAt]) -> Result<(), ConfigError> {
        match self.errors.iter().find(|e| at.contains(&e.at)) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Reads the keys from a repository's configuration, value by value in the order git's
    /// config callbacks see them (a later value overrides an earlier one; every malformed one
    /// is recorded).
    pub fn from_repo(repo: &gix::Repository) -> Self {
        ServeConfig::from_entries(&Entries::of_repo(repo))
    }

    /// Reads the keys from every value of a repository's configuration ([`Entries`]).
    pub fn from_entries(entries: &Entries) -> Self {
        let entries = &entries.0;
        let mut c = ServeConfig::default();
        let mut errors = Vec::new();
        fn set_bool(e: &Entry, at: ReadAt, out: &mut bool, errors: &mut Vec<ConfigError>) {
            match e.bool() {
                Ok(b) => *out = b,
                Err(err) => errors.push(err.at(at)),
            }
        }
        // upload-pack's callback: every value, in order.
        for e in entries {
            let bool_at =
                |at: ReadAt, out: &mut bool, errors: &mut Vec<ConfigError>| set_bool(e, at, out, errors);
            let key = e.key.as_str();
            match key {
                "uploadpack.hiderefs" | "transfer.hiderefs" => match &e.value {
                    Some(v) => c.hide_refs.push(v.to_string().trim_end_matches('/').to_owned()),
                    None => errors.push(e.missing_value().at(ReadAt::HideRefs)),
                },
                "uploadpack.allowtipsha1inwant" => bool_at(ReadAt::UploadPack, &mut c.allow.tip, &mut errors),
                "uploadpack.allowreachablesha1inwant" => {
                    bool_at(ReadAt::UploadPack, &mut c.allow.reachable, &mut errors)
                }
                "uploadpack.allowanysha1inwant" => bool_at(ReadAt::UploadPack, &mut c.allow.any, &mut errors),
                "uploadpack.allowfilter" => bool_at(ReadAt::UploadPack, &mut c.allow_filter, &mut errors),
                "uploadpack.allowrefinwant" => {
                    bool_at(ReadAt::UploadPack, &mut c.allow_ref_in_want, &mut errors)
                }
                "uploadpack.allowsidebandall" => {
                    bool_at(ReadAt::UploadPack, &mut c.allow_sideband_all, &mut errors)
                }
                "transfer.advertisesid" => bool_at(ReadAt::SessionId, &mut c.advertise_sid, &mut errors),
                // Read by git's upload-pack callback too; packserve does not use it.
                "core.precomposeunicode" => bool_at(ReadAt::UploadPack, &mut false, &mut errors),
                "uploadpackfilter.allow" => {
                    bool_at(ReadAt::UploadPack, &mut c.filter.allow_fallback, &mut errors)
                }
                "uploadpack.keepalive" => match e.number(i32::MAX as u64, true) {
                    Ok(n) => c.keepalive = (n > 0).then(|| Duration::from_secs(n as u64)),
                    Err(err) => errors.push(err.at(ReadAt::UploadPack)),
                },
                "uploadpackfilter.tree.maxdepth" => match &e.value {
                    None => errors.push(e.missing_value().at(ReadAt::UploadPack)),
                    Some(_) => match e.number(u64::MAX, false) {
                        // As in git, a maximum depth allows the tree filter.
                        Ok(n) => {
                            c.filter.allowed.push(("tree".into(), true));
                            c.filter.tree_max_depth = Some(n as u64);
                        }
                        Err(err) => errors.push(err.at(ReadAt::UploadPack)),
                    },
                },
                "packserve.bitmapdeltasearch" => {
                    bool_at(ReadAt::UploadPack, &mut c.bitmap_delta_search, &mut errors)
                }
                "pack.usebitmaps" => bool_at(ReadAt::Pack, &mut c.use_bitmaps, &mut errors),
                "pack.window" => match e.number(i32::MAX as u64, true) {
                    Ok(n) => c.pack_window = n.max(0) as usize,
                    Err(err) => errors.push(err.at(ReadAt::Pack)),
                },
                "pack.depth" => match e.number(i32::MAX as u64, true) {
                    Ok(n) => c.pack_depth = n.clamp(0, 4095) as u32,
                    Err(err) => errors.push(err.at(ReadAt::Pack)),
                },
                "uploadpack.advertisebundleuris" => {
                    bool_at(ReadAt::UploadPack, &mut c.advertise_bundle_uris, &mut errors)
                }
                "packserve.cache.dir" | "packserve.limit.dir" => match &e.value {
                    Some(v) if !v.is_empty() => {
                        let dir = Some(std::path::PathBuf::from(v.to_string()));
                        if key == "packserve.cache.dir" {
                            c.cache.dir = dir;
                        } else {
                            c.admission.dir = dir;
                        }
                    }
                    Some(_) => {}
                    None => errors.push(e.missing_value().at(ReadAt::UploadPack)),
                },
                "packserve.cache.maxage"
                | "packserve.cache.maxsize"
                | "packserve.cache.minoccurrences"
                | "packserve.limit.perrepo"
                | "packserve.limit.perhost"
                | "packserve.limit.queuetimeout" => match e.number(u64::MAX, false) {
                    Ok(n) => {
                        let n = n as u64;
                        match key {
                            "packserve.cache.maxage" => c.cache.max_age = Duration::from_secs(n),
                            "packserve.cache.maxsize" => c.cache.max_size = n,
                            "packserve.cache.minoccurrences" => c.cache.min_occurrences = n,
                            "packserve.limit.perrepo" => c.admission.per_repo = n,
                            "packserve.limit.perhost" => c.admission.per_host = n,
                            _ => c.admission.queue_timeout = Duration::from_secs(n),
                        }
                    }
                    Err(err) => errors.push(err.at(ReadAt::UploadPack)),
                },
                "uploadpack.blobpackfileuri" => {
                    if let Some(v) = &e.value {
                        c.blob_packfile_uris.push(v.to_string());
                    }
                }
                _ if key.starts_with("bundle.") => {
                    // git's bundle-uri command: `bundle.[<id>.]<key>=<value>` for every key.
                    if let Some(v) = &e.value {
                        c.bundle_list.push((e.key.clone(), v.to_string()));
                    }
                }
                _ => {
                    if let Some(filter) =
                        key.strip_prefix("uploadpackfilter.").and_then(|k| k.strip_suffix(".allow"))
                    {
                        let mut allowed = false;
                        bool_at(ReadAt::UploadPack, &mut allowed, &mut errors);
                        c.filter.allowed.push((filter.to_owned(), allowed));
                    } else if let Some(limit) = key.strip_prefix("packserve.max") {
                        let l = &mut c.limits;
                        let out = match limit {
                            "requestbytes" => Some(&mut l.max_request_bytes),
                            "wants" => Some(&mut l.max_wants),
                            "haves" => Some(&mut l.max_haves),
                            "depth" => Some(&mut l.max_depth),
                            _ => None,
                        };
                        let filter_depth = limit == "filterdepth";
                        if out.is_some() || filter_depth {
                            match e.number(u64::MAX, false) {
                                Ok(n) if filter_depth => l.max_filter_depth = Some(n as u64),
                                Ok(n) => *out.unwrap() = n as u64,
                                Err(err) => errors.push(err.at(ReadAt::UploadPack)),
                            }
                        }
                    }
                }
            }
        }
        // Keys git reads by their last value only.
        let last = |key: &str| entries.iter().rev().find(|e| e.key == key);
        if let Some(e) = last("transfer.advertiseobjectinfo") {
            match e.bool() {
                Ok(b) => c.advertise_object_info = b,
                Err(err) => errors.push(err.at(ReadAt::ObjectInfo)),
            }
        }
        if let Some(e) = last("core.commitgraph") {
            if let Err(err) = e.bool() {
                errors.push(err.at(ReadAt::Objects));
            }
        }
        if let Some(e) = last("lsrefs.unborn") {
            match e.value.as_ref().map(|v| v.as_slice()) {
                None => errors.push(e.missing_value().at(ReadAt::Unborn)),
                Some(b"advertise") => c.unborn = Unborn::Advertise,
                Some(b"allow") => c.unborn = Unborn::Allow,
                Some(b"ignore") => c.unborn = Unborn::Ignore,
                Some(other) => errors.push(ConfigError {
                    at: ReadAt::Unborn,
                    error: None,
                    fatal: format!("invalid value for 'lsrefs.unborn': '{}'", other.as_bstr()),
                }),
            }
        }
        c.errors = errors;
        c
    }
}

/// Every value of a repository's configuration (system, global, repository, worktree, command
/// line; includes followed), in the order git's config callbacks see them.
#[derive(Debug, Clone, Default)]
pub struct Entries(Vec<Entry>);

impl Entries {
    /// The values of a repository opened by gix.
    pub fn of_repo(repo: &gix::Repository) -> Entries {
        Entries(Entry::all(repo))
    }

    /// The last value of `key` (`section.name` or `section.subsection.name`, section and name
    /// in lowercase).
    fn last(&self, key: &str) -> Option<&Entry> {
        self.0.iter().rev().find(|e| e.key == key)
    }
}

/// A front-end's boolean key read as git's `git_config_get_bool` reads it: the last value;
/// `Ok(None)` when unset; git's error for a malformed one.
pub fn last_bool(entries: &Entries, key: &str) -> Result<Option<bool>, ConfigError> {
    match entries.last(key) {
        None => Ok(None),
        Some(e) => e.bool().map(Some).map_err(|err| err.at(ReadAt::UploadPack)),
    }
}

/// A front-end's numeric key read as git's `git_config_get_ulong` reads it (the last value).
pub fn last_ulong(entries: &Entries, key: &str) -> Result<Option<u64>, ConfigError> {
    match entries.last(key) {
        None => Ok(None),
        Some(e) => {
            e.number(u64::MAX, false).map(|n| Some(n as u64)).map_err(|err| err.at(ReadAt::UploadPack))
        }
    }
}

use gix::bstr::{BString, ByteSlice};

/// Where a value comes from, as git names it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// A file: its path as git shows it, and where to read it.
    File { shown: String, path: std::path::PathBuf },
    /// `GIT_CONFIG_COUNT`… or `GIT_CONFIG_PARAMETERS` (git: "command-line config").
    CommandLine,
}

/// One configuration value as git's config callbacks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// `section.subsection.name`, section and name lowercased.
    key: String,
    /// The value; `None` for a key without `=` (git's NULL, true for booleans).
    value: Option<BString>,
    origin: Origin,
    /// Which value of its file this is (0-based), to find its line for messages.
    index_in_file: usize,
}

/// A malformed value before it is known when git reads it.
struct Malformed {
    error: Option<String>,
    fatal: String,
}

impl Malformed {
    fn at(self, at: ReadAt) -> ConfigError {
        ConfigError { at, error: self.error, fatal: self.fatal }
    }
}

impl Entry {
    /// Every value of the repository's configuration (system, global, repository, worktree,
    /// command line; includes followed), in order.
    fn all(repo: &gix::Repository) -> Vec<Entry> {
        use gix::config::Source;
        let snapshot = repo.config_snapshot();
        let file = snapshot.plumbing();
        let git_dir = repo.git_dir();
        let mut out = Vec::new();
        let mut per_file: std::collections::HashMap<std::path::PathBuf, usize> = Default::default();
        for section in file.sections() {
            let meta = section.meta();
            let origin = match (&meta.source, &meta.path) {
                (Source::EnvOverride, _) => continue,
                (Source::Env | Source::Cli | Source::Api, _) | (_, None) => Origin::CommandLine,
                (source, Some(path)) => {
                    // git names the repository's files relative to the git directory it runs
                    // in, a worktree's common files by their real path, others as found.
                    let shown = match path.strip_prefix(git_dir) {
                        Ok(rel) => rel.display().to_string(),
                        Err(_) if matches!(source, Source::Local | Source::Worktree) => {
                            path.canonicalize().unwrap_or_else(|_| path.clone()).display().to_string()
                        }
                        Err(_) => path.display().to_string(),
                    };
                    Origin::File { shown, path: path.clone() }
                }
            };
            let header = section.header();
            let mut prefix = header.name().to_ascii_lowercase().to_str_lossy().into_owned();
            if let Some(sub) = header.subsection_name() {
                prefix.push('.');
                // The legacy `[section.sub]` form is case-insensitive, as git reads it.
                let sub = if header.is_legacy() { sub.to_ascii_lowercase().into() } else { sub.to_owned() };
                prefix.push_str(&sub.to_str_lossy());
            }
            let text = section.to_bstring();
            let Ok(events) = gix::config::parse::Events::from_bytes(&text, None) else { continue };
            let mut push = |name: &str, value: Option<BString>, out: &mut Vec<Entry>| {
                let index_in_file = match &origin {
                    Origin::File { path, .. } => {
                        let n = per_file.entry(path.clone()).or_default();
                        *n += 1;
                        *n - 1
                    }
                    Origin::CommandLine => 0,
                };
                out.push(Entry {
                    key: format!("{prefix}.{}", name.to_ascii_lowercase()),
                    value,
                    origin: origin.clone(),
                    index_in_file,
                });
            };
            use gix::config::parse::EventRef;
            let mut pending: Option<(String, Option<BString>)> = None;
            let mut continued = BString::default();
            for ev in events.iter() {
                match ev {
                    EventRef::SectionValueName(n) => {
                        if let Some((name, value)) = pending.take() {
                            push(&name, value, &mut out);
                        }
                        pending = Some((n.to_str_lossy().into_owned(), None));
                    }
                    EventRef::KeyValueSeparator => {
                        if let Some(p) = pending.as_mut() {
                            p.1 = Some(BString::default());
                        }
                    }
                    // A key without `=` carries an empty value event too: it stays valueless.
                    EventRef::Value(v) => {
                        if let Some((_, value @ Some(_))) = pending.as_mut() {
                            *value = Some(gix::config::value::normalize(v).into_owned());
                        }
                    }
                    EventRef::ValueNotDone(v) => continued.extend_from_slice(v),
                    EventRef::ValueDone(v) => {
                        continued.extend_from_slice(v);
                        if let Some((_, value @ Some(_))) = pending.as_mut() {
                            *value = Some(gix::config::value::normalize(&continued).into_owned());
                        }
                        continued.clear();
                    }
                    _ => {}
                }
            }
            if let Some((name, value)) = pending.take() {
                push(&name, value, &mut out);
            }
        }
        out
    }

    /// git's `git_config_bool`.
    fn bool(&self) -> Result<bool, Malformed> {
        let Some(v) = &self.value else { return Ok(true) };
        parse_bool(&v.to_str_lossy()).ok_or_else(|| Malformed {
            error: None,
            fatal: format!("bad boolean config value '{}' for '{}'", v.as_bstr(), self.key),
        })
    }

    /// git's `git_config_int` (`signed`, up to `max`) or `git_config_ulong`.
    fn number(&self, max: u64, signed: bool) -> Result<i128, Malformed> {
        let v = self.value.as_ref().map(|v| v.to_str_lossy().into_owned()).unwrap_or_default();
        let parsed = if signed {
            parse_signed(&v, max as i64).map(i128::from)
        } else {
            parse_unsigned(&v, max).map(i128::from)
        };
        parsed.map_err(|reason| {
            let fatal = match &self.origin {
                Origin::File { shown, .. } => {
                    format!("bad numeric config value '{v}' for '{}' in file {shown}: {reason}", self.key)
                }
                Origin::CommandLine => format!("bad numeric config value '{v}' for '{}': {reason}", self.key),
            };
            Malformed { error: None, fatal }
        })
    }

    /// git's `config_error_nonbool` for a key that needs a value, then its death in the config
    /// iteration (`git_die_config_linenr`).
    fn missing_value(&self) -> Malformed {
        let fatal = match &self.origin {
            Origin::File { shown, path } => {
                let line = line_of_value(path, self.index_in_file).unwrap_or(0);
                format!("bad config variable '{}' in file '{shown}' at line {line}", self.key)
            }
            Origin::CommandLine => format!("unable to parse '{}' from command-line config", self.key),
        };
        Malformed { error: Some(format!("missing value for '{}'", self.key)), fatal }
    }
}

/// The line (1-based) on which the `index`-th value of the config file at `path` ends, as git
/// counts lines for its messages.
fn line_of_value(path: &std::path::Path, index: usize) -> Option<usize> {
    use gix::config::parse::EventRef;
    let bytes = std::fs::read(path).ok()?;
    let events = gix::config::parse::Events::from_bytes(&bytes, None).ok()?;
    let mut line = 1;
    let mut seen = 0;
    let mut found = None;
    for ev in events.iter() {
        match ev {
            EventRef::SectionValueName(_) | EventRef::SectionHeader { .. } if found.is_some() => break,
            EventRef::SectionValueName(_) => {
                if seen == index {
                    found = Some(line);
                }
                seen += 1;
            }
            EventRef::Newline(n) => line += n.iter().filter(|&&b| b == b'\n').count(),
            EventRef::Value(_) | EventRef::ValueDone(_) if found.is_some() => found = Some(line),
            _ => {}
        }
    }
    found
}

/// Why git refuses a number (the end of its message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    InvalidUnit,
    OutOfRange,
}

impl std::fmt::Display for NumberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NumberError::InvalidUnit => "invalid unit",
            NumberError::OutOfRange => "out of range",
        })
    }
}

/// C's `strtoumax(s, &end, 0)`: leading whitespace, a sign, `0x` hex or `0` octal. Returns the
/// magnitude, whether it was negative, and the rest; `None` when no digit was read. `Err` on
/// overflow (ERANGE).
fn strtoumax(s: &str) -> Option<Result<(u64, bool, &str), NumberError>> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let hex_digits = |x: &str| x.as_bytes().first().is_some_and(u8::is_ascii_hexdigit);
    let (radix, digits) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) if hex_digits(h) => (16, h),
        _ if t.starts_with('0') => (8, t),
        _ => (10, t),
    };
    let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut n: u64 = 0;
    let mut overflow = false;
    for c in digits[..end].chars() {
        let d = u64::from(c.to_digit(radix).unwrap_or(0));
        match n.checked_mul(u64::from(radix)).and_then(|m| m.checked_add(d)) {
            Some(m) => n = m,
            None => overflow = true,
        }
    }
    Some(if overflow { Err(NumberError::OutOfRange) } else { Ok((n, neg, &digits[end..])) })
}

/// git's `get_unit_factor`.
fn unit_factor(end: &str) -> Option<u64> {
    match end.to_ascii_lowercase().as_str() {
        "" => Some(1),
        "k" => Some(1 << 10),
        "m" => Some(1 << 20),
        "g" => Some(1 << 30),
        _ => None,
    }
}

/// git's `git_parse_signed` with `max` (`int` keys: `i32::MAX`).
pub fn parse_signed(v: &str, max: i64) -> Result<i64, NumberError> {
    let (n, neg, end) = strtoumax(v).ok_or(NumberError::InvalidUnit)??;
    let factor = unit_factor(end).ok_or(NumberError::InvalidUnit)?;
    // strtoimax's own range is i64's.
    let n = i128::from(n);
    let val = if neg { -n } else { n };
    if val > i128::from(i64::MAX) || val < i128::from(i64::MIN) {
        return Err(NumberError::OutOfRange);
    }
    let total = val * i128::from(factor);
    if total > i128::from(max) || total < -i128::from(max) {
        return Err(NumberError::OutOfRange);
    }
    Ok(total as i64)
}

/// git's `git_parse_unsigned` with `max` (`unsigned long` keys: `u64::MAX`): decimal, `0x` hex or
/// `0` octal with an optional `k`, `m` or `g` suffix; a `-` anywhere is refused. Also how
/// packserve reads its own counts (`packserve.max*`).
pub fn parse_unsigned(v: &str, max: u64) -> Result<u64, NumberError> {
    if v.contains('-') {
        return Err(NumberError::InvalidUnit);
    }
    let (n, _, end) = strtoumax(v).ok_or(NumberError::InvalidUnit)??;
    let factor = unit_factor(end).ok_or(NumberError::InvalidUnit)?;
    n.checked_mul(factor).filter(|&t| t <= max).ok_or(NumberError::OutOfRange)
}

/// git's boolean spellings (`git_parse_maybe_bool`): `true`/`yes`/`on`, `false`/`no`/`off` (any
/// case), the empty string (false), or an `int` (non-zero is true).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "" | "false" | "no" | "off" => Some(false),
        _ => parse_signed(v, i64::from(i32::MAX)).ok().map(|n| n != 0),
    }
}

/// Parses `GIT_CONFIG_PARAMETERS` (what `git -c key=value` exports): sq-quoted
/// `'key'='value'` or `'key=value'` items separated by spaces. Returns `key=value` strings.
pub fn parse_config_parameters(s: &str) -> Result<Vec<String>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let sq = |i: &mut usize| -> Result<String, String> {
        // At a quote: read until the closing quote, honouring git's `'\''` escape.
        let mut v = String::new();
        loop {
            if bytes.get(*i) != Some(&b'\'') {
                return Err("bogus format in GIT_CONFIG_PARAMETERS".into());
            }
            *i += 1;
            let start = *i;
            while *i < bytes.len() && bytes[*i] != b'\'' {
                *i += 1;
            }
            if *i >= bytes.len() {
                return Err("bogus format in GIT_CONFIG_PARAMETERS".into());
            }
            v.push_str(&s[start..*i]);
            *i += 1;
            if bytes.get(*i) == Some(&b'\\') && bytes.get(*i + 1) == Some(&b'\'') {
                v.push('\'');
                *i += 2;
                continue;
            }
            return Ok(v);
        }
    };
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key = sq(&mut i)?;
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            if bytes.get(i) == Some(&b'\'') {
                let value = sq(&mut i)?;
                out.push(format!("{key}={value}"));
            } else if bytes.get(i).is_none_or(|&b| b == b' ') {
                // `'key'=`: `git -c key` (no value) since git 2.31, a key without a value (true
                // as a boolean; "missing value" where a value is needed), not an empty string.
                out.push(key);
            } else {
                return Err("bogus format in GIT_CONFIG_PARAMETERS".into());
            }
        } else {
            out.push(key);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parameters() {
        assert_eq!(
            parse_config_parameters("'uploadpack.allowfilter'='true' 'a.b=c' 'x.y'='it'\\''s'").unwrap(),
            vec!["uploadpack.allowfilter=true", "a.b=c", "x.y=it's"]
        );
        assert!(parse_config_parameters("'unterminated").is_err());
        // `git -c a.b` exports `'a.b'=`: no value, which is not the empty value `'a.b'=''`.
        assert_eq!(parse_config_parameters("'a.b'= 'c.d'=''").unwrap(), vec!["a.b", "c.d="]);
        assert_eq!(parse_config_parameters("'a.b'=").unwrap(), vec!["a.b"]);
        assert!(parse_config_parameters("'a.b'=x").is_err());
        assert!(parse_config_parameters("bare").is_err());
        assert_eq!(parse_config_parameters("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn counts() {
        let count = |v| parse_unsigned(v, u64::MAX).ok();
        assert_eq!(count("64m"), Some(64 << 20));
        assert_eq!(count(" 12"), Some(12));
        assert_eq!(count("12 "), None);
        assert_eq!(count("1K"), Some(1024));
        assert_eq!(count("0x10"), Some(16));
        assert_eq!(count("010"), Some(8));
        assert_eq!(count("-1"), None);
        assert_eq!(count("lots"), None);
        assert_eq!(count(""), None);
        assert_eq!(parse_unsigned("99999999999999999999", u64::MAX), Err(NumberError::OutOfRange));
        assert_eq!(parse_unsigned("17179869184g", u64::MAX), Err(NumberError::OutOfRange));
        assert_eq!(parse_unsigned("1kb", u64::MAX), Err(NumberError::InvalidUnit));
    }

    #[test]
    fn ints_like_git() {
        let int = |v| parse_signed(v, i64::from(i32::MAX));
        assert_eq!(int("5"), Ok(5));
        assert_eq!(int("-5"), Ok(-5));
        assert_eq!(int("2k"), Ok(2048));
        assert_eq!(int("2147483647"), Ok(i64::from(i32::MAX)));
        assert_eq!(int("2147483648"), Err(NumberError::OutOfRange));
        assert_eq!(int("99999999999999999999"), Err(NumberError::OutOfRange));
        assert_eq!(int("abc"), Err(NumberError::InvalidUnit));
        assert_eq!(int(""), Err(NumberError::InvalidUnit));
        assert_eq!(int("0x"), Err(NumberError::InvalidUnit));
        assert_eq!(NumberError::InvalidUnit.to_string(), "invalid unit");
    }

    #[test]
    fn limit_overrides() {
        let mut l = Limits::default();
        LimitOverrides { max_wants: Some(3), max_filter_depth: Some(2), ..Default::default() }.apply(&mut l);
        assert_eq!(l.max_wants, 3);
        assert_eq!(l.max_filter_depth, Some(2));
        assert_eq!(l.max_haves, Limits::DEFAULT_MAX_HAVES);
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool(""), Some(false));
        assert_eq!(parse_bool("2"), Some(true));
        assert_eq!(parse_bool("0x0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(" true"), None);
    }

    #[test]
    fn filter_allow_rules() {
        let mut f = FilterConfig::default();
        assert!(f.allows("blob:none"));
        f.allow_fallback = false;
        f.allowed.push(("blob:none".into(), true));
        assert!(f.allows("blob:none"));
        assert!(!f.allows("tree"));
    }
}
