//! What is advertised. Only what is implemented appears here.

/// `agent=` value.
pub fn agent() -> String {
    format!("packserve/{}", env!("CARGO_PKG_VERSION"))
}

/// The v0/v1 capability list written after the NUL of the first ref line.
pub fn v0_capabilities(stateless: bool, head_symref: Option<&[u8]>, object_format: &str) -> Vec<u8> {
    let mut s =
        b"multi_ack thin-pack side-band side-band-64k ofs-delta no-progress include-tag multi_ack_detailed"
            .to_vec();
    if stateless {
        s.extend_from_slice(b" no-done");
    }
    if let Some(target) = head_symref {
        s.extend_from_slice(b" symref=HEAD:");
        s.extend_from_slice(target);
    }
    s.extend_from_slice(format!(" object-format={object_format} agent={}", agent()).as_bytes());
    s
}

/// The v2 capability advertisement, one entry per line.
pub fn v2_capabilities(object_format: &str) -> Vec<String> {
    vec![
        "version 2".into(),
        format!("agent={}", agent()),
        "ls-refs=unborn".into(),
        "fetch=wait-for-done".into(),
        "server-option".into(),
        format!("object-format={object_format}"),
    ]
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
}

impl ClientCaps {
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
        let caps = v0_capabilities(true, Some(b"refs/heads/main"), "sha1");
        let want = format!(
            "multi_ack thin-pack side-band side-band-64k ofs-delta no-progress include-tag multi_ack_detailed no-done symref=HEAD:refs/heads/main object-format=sha1 agent=packserve/{}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(caps).unwrap(), want);
        let caps = v0_capabilities(false, None, "sha1");
        assert!(!String::from_utf8(caps).unwrap().contains("no-done"));
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
