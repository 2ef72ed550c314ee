//! pkt-line encoding and decoding for raw protocol tests: four hex digits of
//! length (including themselves), then the payload; `0000` flush, `0001`
//! delimiter, `0002` response end. Also splits side-band responses and
//! advertisements into the parts the tests compare.

/// One pkt-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pkt {
    /// A data line with its payload (newline, if any, kept).
    Data(Vec<u8>),
    /// `0000`
    Flush,
    /// `0001`
    Delim,
    /// `0002`
    ResponseEnd,
}

impl Pkt {
    /// The payload of a data line as text with one trailing newline removed;
    /// `None` for flush, delim and response-end.
    pub fn text(&self) -> Option<String> {
        match self {
            Pkt::Data(d) => {
                let d = d.strip_suffix(b"\n").unwrap_or(d);
                Some(String::from_utf8_lossy(d).into_owned())
            }
            _ => None,
        }
    }
}

pub const FLUSH: &[u8] = b"0000";
pub const DELIM: &[u8] = b"0001";

/// Encodes one data pkt-line.
pub fn data(payload: impl AsRef<[u8]>) -> Vec<u8> {
    let payload = payload.as_ref();
    assert!(payload.len() + 4 <= 65520, "pkt-line payload too long");
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Encodes a request from text lines; `"0000"` and `"0001"` stand for flush and delim,
/// every other line is sent as a data line with a newline appended.
pub fn request(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        match *line {
            "0000" => out.extend_from_slice(FLUSH),
            "0001" => out.extend_from_slice(DELIM),
            l => out.extend_from_slice(&data(format!("{l}\n"))),
        }
    }
    out
}

/// Decodes as many pkt-lines as possible. Returns them and the number of bytes consumed;
/// stops at the end of input, at a truncated line or at bytes that are not a pkt-line header.
pub fn parse_prefix(buf: &[u8]) -> (Vec<Pkt>, usize) {
    let mut pkts = Vec::new();
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let Some(len) =
            std::str::from_utf8(&buf[pos..pos + 4]).ok().and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        match len {
            0 => pkts.push(Pkt::Flush),
            1 => pkts.push(Pkt::Delim),
            2 => pkts.push(Pkt::ResponseEnd),
            3 => break,
            n => {
                if pos + n > buf.len() {
                    break;
                }
                pkts.push(Pkt::Data(buf[pos + 4..pos + n].to_vec()));
                pos += n;
                continue;
            }
        }
        pos += 4;
    }
    (pkts, pos)
}

/// Decodes a whole stream that must consist of pkt-lines only.
pub fn parse_all(buf: &[u8]) -> Vec<Pkt> {
    let (pkts, used) = parse_prefix(buf);
    assert_eq!(
        used,
        buf.len(),
        "stream is not made of pkt-lines: {} bytes left after {} pkt-lines, starting with {:?}",
        buf.len() - used,
        pkts.len(),
        String::from_utf8_lossy(&buf[used..buf.len().min(used + 80)])
    );
    pkts
}

/// Human-readable rendering of pkt-lines for assertion messages.
pub fn render(pkts: &[Pkt]) -> String {
    let mut s = String::new();
    for p in pkts {
        match p {
            Pkt::Flush => s.push_str("0000\n"),
            Pkt::Delim => s.push_str("0001\n"),
            Pkt::ResponseEnd => s.push_str("0002\n"),
            Pkt::Data(d) if d.first().is_some_and(|b| *b <= 3) => {
                s.push_str(&format!("<band {} : {} bytes>\n", d[0], d.len() - 1))
            }
            Pkt::Data(d) => {
                s.push_str(&String::from_utf8_lossy(d).replace('\0', "\\0"));
                if !d.ends_with(b"\n") {
                    s.push_str("⏎\n");
                }
            }
        }
    }
    s
}

/// A reference advertisement of protocol v0/v1 (`--advertise-refs` output).
#[derive(Debug)]
pub struct Advertisement {
    /// `version 1` when the server announced it.
    pub version_line: Option<String>,
    /// All ref lines without newline; the first one without its capability list.
    pub ref_lines: Vec<String>,
    /// The capabilities after the NUL of the first line.
    pub caps: Vec<String>,
}

impl Advertisement {
    /// Capabilities with the given prefix (e.g. `symref=`).
    pub fn caps_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.caps.iter().filter(|c| c.starts_with(prefix)).cloned().collect()
    }
}

/// Parses a v0/v1 advertisement: optional `version 1`, ref lines, flush, nothing after.
pub fn parse_v0_advertisement(out: &[u8]) -> Advertisement {
    let pkts = parse_all(out);
    let mut it = pkts.iter().peekable();
    let mut version_line = None;
    if let Some(Pkt::Data(d)) = it.peek() {
        if d.starts_with(b"version ") {
            version_line = Some(it.next().unwrap().text().unwrap());
        }
    }
    let mut ref_lines = Vec::new();
    let mut caps = Vec::new();
    let mut saw_flush = false;
    for p in it.by_ref() {
        match p {
            Pkt::Data(d) => {
                assert!(
                    d.ends_with(b"\n"),
                    "advertised line without newline: {:?}",
                    String::from_utf8_lossy(d)
                );
                let line = &d[..d.len() - 1];
                if ref_lines.is_empty() {
                    let nul = line.iter().position(|b| *b == 0).unwrap_or_else(|| {
                        panic!("first advertised line has no NUL: {:?}", String::from_utf8_lossy(line))
                    });
                    caps = String::from_utf8_lossy(&line[nul + 1..])
                        .split(' ')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect();
                    ref_lines.push(String::from_utf8_lossy(&line[..nul]).into_owned());
                } else {
                    assert!(
                        !line.contains(&0),
                        "NUL in a later ref line: {:?}",
                        String::from_utf8_lossy(line)
                    );
                    ref_lines.push(String::from_utf8_lossy(line).into_owned());
                }
            }
            Pkt::Flush => {
                saw_flush = true;
                break;
            }
            other => panic!("unexpected {other:?} in advertisement:\n{}", render(&pkts)),
        }
    }
    assert!(saw_flush, "advertisement does not end with a flush:\n{}", render(&pkts));
    assert!(it.next().is_none(), "pkt-lines after the advertisement's flush:\n{}", render(&pkts));
    Advertisement { version_line, ref_lines, caps }
}

/// The parts of a fetch response: the text lines before the pack (NAK/ACK, section
/// headers...), the concatenated band-1 bytes (the pack), band-2 progress, and whether
/// band 3 (fatal error) was used.
#[derive(Debug, Default)]
pub struct FetchResponse {
    pub lines: Vec<String>,
    pub pack: Vec<u8>,
    pub progress: Vec<u8>,
    pub band3: Vec<u8>,
    pub ended_with_flush: bool,
}

/// Splits a side-band fetch response. In v0 the pack starts at the first data line whose first
/// byte is 1, 2 or 3; in v2 after the `packfile` section header.
pub fn parse_fetch_response(out: &[u8]) -> FetchResponse {
    let pkts = parse_all(out);
    let mut r = FetchResponse::default();
    let mut in_sideband = false;
    for p in &pkts {
        match p {
            Pkt::Data(d) if in_sideband || d.first().is_some_and(|b| (1..=3).contains(b)) => {
                in_sideband = true;
                match d.first() {
                    Some(1) => r.pack.extend_from_slice(&d[1..]),
                    Some(2) => r.progress.extend_from_slice(&d[1..]),
                    Some(3) => r.band3.extend_from_slice(&d[1..]),
                    _ => panic!("bad side-band byte in {:?}", String::from_utf8_lossy(d)),
                }
            }
            Pkt::Data(_) => {
                let t = p.text().unwrap();
                if t == "packfile" {
                    in_sideband = true;
                }
                r.lines.push(t);
            }
            Pkt::Flush => r.ended_with_flush = true,
            Pkt::Delim | Pkt::ResponseEnd => r.lines.push(format!("{p:?}")),
        }
    }
    r
}

/// Object count from a pack header (`PACK`, version 2 or 3, count), if it is one.
pub fn pack_header_count(pack: &[u8]) -> Option<u32> {
    if pack.len() < 12 || &pack[..4] != b"PACK" {
        return None;
    }
    let version = u32::from_be_bytes(pack[4..8].try_into().unwrap());
    if version != 2 && version != 3 {
        return None;
    }
    Some(u32::from_be_bytes(pack[8..12].try_into().unwrap()))
}
