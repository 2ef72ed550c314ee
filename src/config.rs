//! The configuration keys packserve honours, read once per connection the way git reads them
//! (system, global, repository, `GIT_CONFIG_COUNT`/`GIT_CONFIG_PARAMETERS` overrides), turned
//! into one plain value. No key ever makes packserve run a program.

use std::time::Duration;

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
/// README "Limits"); `packserve.*` keys and the plain form's `--max-*` flags change them.
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
    /// `uploadpack.keepAlive` (default 5 seconds; 0 disables).
    pub keepalive: Option<Duration>,
    /// `packserve.max*`.
    pub limits: Limits,
    /// `packserve.bitmapDeltaSearch`: search thin deltas for objects stored whole when counting
    /// with bitmaps (default false, as git).
    pub bitmap_delta_search: bool,
    /// `uploadpack.advertiseBundleURIs`: advertise the v2 `bundle-uri` command.
    pub advertise_bundle_uris: bool,
    /// Every `bundle.*` key with a value, in configuration order, as git's `bundle-uri` command
    /// sends them: the key with its section and name lowercased (the subsection as written),
    /// and the value.
    pub bundle_list: Vec<(String, String)>,
    /// `uploadpack.blobPackfileUri` values (`<object-id> <pack-hash> <uri>`), as written; parsed
    /// when a client asks for `packfile-uris` ([`BlobPackfileUri::parse_all`]).
    pub blob_packfile_uris: Vec<String>,
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
            limits: Limits::default(),
            bitmap_delta_search: false,
            advertise_bundle_uris: false,
            bundle_list: Vec::new(),
            blob_packfile_uris: Vec::new(),
        }
    }
}

impl ServeConfig {
    /// Reads the keys from a repository's configuration.
    pub fn from_repo(repo: &gix::Repository) -> Self {
        let snapshot = repo.config_snapshot();
        let file = snapshot.plumbing();
        let mut c = ServeConfig::default();
        // Sections in the order git reads them; the last value of a key wins, except for the
        // multi-valued hideRefs which accumulate.
        for section in file.sections() {
            let header = section.header();
            let name = header.name().to_string().to_ascii_lowercase();
            let sub = header.subsection_name().map(|s| s.to_string());
            let body = section.body();
            match (name.as_str(), sub.as_deref()) {
                ("transfer", None) | ("uploadpack", None) => {
                    for v in body.values("hideRefs") {
                        let v = v.to_string();
                        let v = v.trim_end_matches('/');
                        c.hide_refs.push(v.to_owned());
                    }
                    if name == "uploadpack" {
                        set_bool(&body, "allowTipSHA1InWant", &mut c.allow.tip);
                        set_bool(&body, "allowReachableSHA1InWant", &mut c.allow.reachable);
                        let mut any = false;
                        if set_bool(&body, "allowAnySHA1InWant", &mut any) {
                            c.allow.any = any;
                        }
                        set_bool(&body, "allowFilter", &mut c.allow_filter);
                        set_bool(&body, "allowRefInWant", &mut c.allow_ref_in_want);
                        set_bool(&body, "allowSidebandAll", &mut c.allow_sideband_all);
                        set_bool(&body, "advertiseBundleURIs", &mut c.advertise_bundle_uris);
                        c.blob_packfile_uris
                            .extend(body.values("blobPackfileUri").iter().map(|v| v.to_string()));
                        if let Some(v) = last_value(&body, "keepAlive") {
                            c.keepalive = v
                                .trim()
                                .parse::<u64>()
                                .ok()
                                .and_then(|s| (s > 0).then(|| Duration::from_secs(s)));
                        }
                    } else {
                        set_bool(&body, "advertiseObjectInfo", &mut c.advertise_object_info);
                        set_bool(&body, "advertiseSID", &mut c.advertise_sid);
                    }
                }
                ("bundle", sub) => {
                    // git's bundle-uri command: `bundle.[<id>.]<key>=<value>` for every key.
                    for (key, value) in body {
                        let key = key.to_ascii_lowercase();
                        let name = match sub {
                            Some(id) => format!("bundle.{id}.{key}"),
                            None => format!("bundle.{key}"),
                        };
                        c.bundle_list.push((name, value.to_string()));
                    }
                }
                ("packserve", None) => {
                    let l = &mut c.limits;
                    for (key, out) in [
                        ("maxRequestBytes", &mut l.max_request_bytes),
                        ("maxWants", &mut l.max_wants),
                        ("maxHaves", &mut l.max_haves),
                        ("maxDepth", &mut l.max_depth),
                    ] {
                        if let Some(v) = last_value(&body, key).and_then(|v| parse_count(&v)) {
                            *out = v;
                        }
                    }
                    if let Some(v) = last_value(&body, "maxFilterDepth").and_then(|v| parse_count(&v)) {
                        l.max_filter_depth = Some(v);
                    }
                    set_bool(&body, "bitmapDeltaSearch", &mut c.bitmap_delta_search);
                }
                ("uploadpackfilter", None) => {
                    set_bool(&body, "allow", &mut c.filter.allow_fallback);
                }
                ("uploadpackfilter", Some(filter)) => {
                    let mut allowed = false;
                    if set_bool(&body, "allow", &mut allowed) {
                        // git's config names: `blob:none`, `blob:limit`, `tree`, `sparse:oid`, ...
                        let key = match filter {
                            "tree" => "tree".to_owned(),
                            other => other.to_owned(),
                        };
                        c.filter.allowed.push((key, allowed));
                    }
                    if filter == "tree" {
                        if let Some(v) = last_value(&body, "maxDepth") {
                            // As in git, a maximum depth allows the tree filter.
                            c.filter.allowed.push(("tree".into(), true));
                            c.filter.tree_max_depth = v.trim().parse().ok();
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }
}

fn last_value(body: &gix::config::file::section::BodyRef<'_>, key: &str) -> Option<String> {
    body.value(key).map(|v| v.to_string())
}

/// Sets `out` from the last value of `key` if present and a valid boolean; returns whether it was set.
fn set_bool(body: &gix::config::file::section::BodyRef<'_>, key: &str, out: &mut bool) -> bool {
    let parsed = match body.value_implicit(key) {
        None => None,
        // A key without `=` is true in git.
        Some(None) => Some(true),
        Some(Some(v)) => parse_bool(&v.to_string()),
    };
    if let Some(b) = parsed {
        *out = b;
    }
    parsed.is_some()
}

/// A count as git writes integers in config: decimal with an optional `k`, `m` or `g` suffix.
pub fn parse_count(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, factor) = match v.chars().last()?.to_ascii_lowercase() {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(factor)
}

/// git's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        other => other.parse::<i64>().ok().map(|n| n != 0),
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
            let value = if bytes.get(i) == Some(&b'\'') { sq(&mut i)? } else { String::new() };
            out.push(format!("{key}={value}"));
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
        assert!(parse_config_parameters("bare").is_err());
        assert_eq!(parse_config_parameters("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("64m"), Some(64 << 20));
        assert_eq!(parse_count(" 12 "), Some(12));
        assert_eq!(parse_count("1K"), Some(1024));
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_count("lots"), None);
        assert_eq!(parse_count(""), None);
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
        assert_eq!(parse_bool("2"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
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
