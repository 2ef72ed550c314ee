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
