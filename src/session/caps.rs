//! What is advertised. Only what is implemented appears here.

/// The `agent=` value, as git's `git_user_agent_sanitized` makes it: `user_agent`
/// (`GIT_USER_AGENT`) when set, even empty, else `packserve/<version>`; surrounding spaces,
/// tabs, CRs and LFs trimmed and every other byte outside `!`..`~` replaced by `.`.
pub fn agent(user_agent: Option<&[u8]>) -> String {
    let Some(ua) = user_agent else {
        return format!("packserve/{}", env!("CARGO_PKG_VERSION"));
    };
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = ua.iter().position(|b| !space(b)).unwrap_or(ua.len());
    let end = ua.iter().rposition(|b| !space(b)).map_or(start, |i| i + 1);
    ua[start..end].iter().map(|&b| if (33..127).contains(&b) { b as char } else { '.' }).collect()
}

/// What this server advertises, decided from configuration and the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertise {
    /// `agent=` value.
    pub agent: String,
    /// `sha1` or `sha256`.
    pub object_format: &'static str,
    /// Shallow support (`shallow`, `deepen-*`).
    pub shallow: bool,
    /// `allow-tip-sha1-in-want` (v0).
    pub allow_tip: bool,
    /// `allow-reachable-sha1-in-want` (v0).
    pub allow_reachable: bool,
    /// `no-done` (v0, stateless).
    pub no_done: bool,
    /// `filter`.
    pub filter: bool,
    /// `ref-in-want` (v2).
    pub ref_in_want: bool,
    /// `sideband-all` (v2).
    pub sideband_all: bool,
    /// `object-info` (v2).
    pub object_info: bool,
    /// `ls-refs=unborn` (v2, `lsrefs.unborn=advertise`); plain `ls-refs` otherwise.
    pub unborn: bool,
    /// `session-id=<id>`.
    pub session_id: Option<String>,
    /// `bundle-uri` (v2, `uploadpack.advertiseBundleURIs`).
    pub bundle_uri: bool,
    /// `packfile-uris` in `fetch=` (v2, some `uploadpack.blobPackfileUri`).
    pub packfile_uris: bool,
}

/// The v0/v1 capability list written after the NUL of the first ref line, in git's order.
pub fn v0_capabilities(adv: &Advertise, head_symref: Option<&[u8]>) -> Vec<u8> {
    let mut s = String::from("multi_ack thin-pack side-band side-band-64k ofs-delta");
    if adv.shallow {
        s.push_str(" shallow deepen-since deepen-not deepen-relative");
    }
    s.push_str(" no-progress include-tag multi_ack_detailed");
    if adv.allow_tip {
        s.push_str(" allow-tip-sha1-in-want");
    }
    if adv.allow_reachable {
        s.push_str(" allow-reachable-sha1-in-want");
    }
    if adv.no_done {
        s.push_str(" no-done");
    }
    let mut out = s.into_bytes();
    if let Some(target) = head_symref {
        out.extend_from_slice(b" symref=HEAD:");
        out.extend_from_slice(target);
    }
    if adv.filter {
        out.extend_from_slice(b" filter");
    }
    if let Some(sid) = &adv.session_id {
        out.extend_from_slice(format!(" session-id={sid}").as_bytes());
    }
    out.extend_from_slice(format!(" object-format={} agent={}", adv.object_format, adv.agent).as_bytes());
    out
}

/// The v2 capability advertisement, one entry per line, in git's order.
pub fn v2_capabilities(adv: &Advertise) -> Vec<String> {
    let mut fetch = String::from("fetch=");
    if adv.shallow {
        fetch.push_str("shallow ");
    }
    fetch.push_str("wait-for-done");
    if adv.filter {
        fetch.push_str(" filter");
    }
    if adv.ref_in_want {
        fetch.push_str(" ref-in-want");
    }
    if adv.sideband_all {
        fetch.push_str(" sideband-all");
    }
    if adv.packfile_uris {
        fetch.push_str(" packfile-uris");
    }
    let mut lines = vec![
        "version 2".into(),
        // An empty value (GIT_USER_AGENT="") is advertised as a bare `agent`, as git does.
        if adv.agent.is_empty() { "agent".into() } else { format!("agent={}", adv.agent) },
        if adv.unborn { "ls-refs=unborn".into() } else { "ls-refs".into() },
        fetch,
        "server-option".into(),
        format!("object-format={}", adv.object_format),
    ];
    if let Some(sid) = &adv.session_id {
        lines.push(format!("session-id={sid}"));
    }
    if adv.object_info {
        lines.push("object-info".into());
    }
    if adv.bundle_uri {
        lines.push("bundle-uri".into());
    }
    lines
}

/// Capabilities a client may send in v0/v1 want lines that we understand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    /// 0 none, 1 `multi_ack`, 2 `multi_ack_detailed`.
    pub multi_ack: u8,
    /// `no-done`.
    pub no_done: bool,
    /// `thin-pack`.
    pub thin_pack: bool,
    /// `side-band` (1) or `side-band-64k` (2).
    pub side_band: u8,
    /// `ofs-delta`.
    pub ofs_delta: bool,
    /// `no-progress`.
    pub no_progress: bool,
    /// `include-tag`.
    pub include_tag: bool,
    /// `deepen-relative`.
    pub deepen_relative: bool,
    /// `filter`.
    pub filter: bool,
}

impl ClientCaps {
    /// Adds what another want line asked for (git reads features from every want line).
    pub fn merge(&mut self, o: ClientCaps) {
        self.multi_ack = self.multi_ack.max(o.multi_ack);
        self.no_done |= o.no_done;
        self.thin_pack |= o.thin_pack;
        self.side_band = self.side_band.max(o.side_band);
        self.ofs_delta |= o.ofs_delta;
        self.no_progress |= o.no_progress;
        self.include_tag |= o.include_tag;
        self.deepen_relative |= o.deepen_relative;
        self.filter |= o.filter;
    }

    /// Parses the space-separated capability list of the first want line. Unknown ones are ignored
    /// as git ignores them.
    pub fn parse(list: &[u8]) -> Self {
        let mut c = ClientCaps::default();
        for cap in list.split(|&b| b == b' ').filter(|s| !s.is_empty()) {
            match cap {
                b"multi_ack" => c.multi_ack = c.multi_ack.max(1),
                b"multi_ack_detailed" => c.multi_ack = 2,
                b"no-done" => c.no_done = true,
                b"thin-pack" => c.thin_pack = true,
                b"side-band" => c.side_band = c.side_band.max(1),
                b"side-band-64k" => c.side_band = 2,
                b"ofs-delta" => c.ofs_delta = true,
                b"no-progress" => c.no_progress = true,
                b"include-tag" => c.include_tag = true,
                b"deepen-relative" => c.deepen_relative = true,
                b"filter" => c.filter = true,
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_list_is_exact() {
        let adv =
            Advertise { agent: agent(None), object_format: "sha1", no_done: true, ..Default::default() };
        let caps = v0_capabilities(&adv, Some(b"refs/heads/main"));
        let want = format!(
            "multi_ack thin-pack side-band side-band-64k ofs-delta no-progress include-tag multi_ack_detailed no-done symref=HEAD:refs/heads/main object-format=sha1 agent=packserve/{}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(caps).unwrap(), want);
        let adv = Advertise {
            object_format: "sha1",
            shallow: true,
            allow_tip: true,
            allow_reachable: true,
            filter: true,
            session_id: Some("s1".into()),
            ..Default::default()
        };
        let caps = String::from_utf8(v0_capabilities(&adv, None)).unwrap();
        assert!(caps.starts_with("multi_ack thin-pack side-band side-band-64k ofs-delta shallow deepen-since deepen-not deepen-relative no-progress include-tag multi_ack_detailed allow-tip-sha1-in-want allow-reachable-sha1-in-want filter session-id=s1 object-format=sha1 agent="));
    }

    #[test]
    fn agent_like_git() {
        assert!(agent(None).starts_with("packserve/"));
        assert_eq!(agent(Some(b"")), "");
        assert_eq!(agent(Some(b" \tmy agent/1.0\r\n")), "my.agent/1.0");
        assert_eq!(agent(Some("caf\u{e9}\x7f\x0b".as_bytes())), "caf....");
    }

    #[test]
    fn v2_list_is_exact() {
        let adv = Advertise {
            object_format: "sha1",
            shallow: true,
            filter: true,
            ref_in_want: true,
            sideband_all: true,
            object_info: true,
            unborn: true,
            session_id: Some("s1".into()),
            bundle_uri: true,
            packfile_uris: true,
            ..Default::default()
        };
        let lines = v2_capabilities(&adv);
        assert_eq!(lines[2], "ls-refs=unborn");
        assert_eq!(lines[3], "fetch=shallow wait-for-done filter ref-in-want sideband-all packfile-uris");
        assert_eq!(&lines[5..], ["object-format=sha1", "session-id=s1", "object-info", "bundle-uri"]);
    }

    #[test]
    fn parses_client_caps() {
        let c = ClientCaps::parse(
            b"multi_ack_detailed side-band-64k thin-pack no-progress ofs-delta agent=git/2.47.3",
        );
        assert_eq!(c.multi_ack, 2);
        assert_eq!(c.side_band, 2);
        assert!(c.thin_pack && c.ofs_delta && c.no_progress && !c.include_tag && !c.no_done);
        let c = ClientCaps::parse(b"multi_ack side-band");
        assert_eq!((c.multi_ack, c.side_band), (1, 1));
    }
}
