//! `packed-refs`, read as git's packed-backend.c reads it: the file is mapped, its header's
//! traits are honoured (`sorted`: the records are in name order, so nothing is sorted or
//! merged; `fully-peeled`: a record without a `^<peeled>` line does not peel), and the
//! records are walked in place — names are slices of the mapping, ids are parsed where they
//! are used. Nothing is allocated per ref (a file without the `sorted` trait is sorted once
//! into a copy, as git does).
//!
//! Unlike git, which dies on a bad line only when an iteration reaches it, the whole file is
//! checked when it is opened, so that a listing never starts before the error (git's
//! messages, in the order git would meet the lines).

use gix::bstr::ByteSlice;
use gix::hash::ObjectId;

/// What the header says about peeled values (packed-backend.c `enum peeled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peeled {
    /// No trait: a `^` line is used when there is one; otherwise the object is looked at.
    None,
    /// `peeled`: refs under `refs/tags/` that peel have their `^` line.
    Tags,
    /// `fully-peeled`: every ref that peels has its `^` line.
    Fully,
}

/// A `packed-refs` line git dies on: git's message without `fatal: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackedError(pub String);

/// The file's bytes: mapped when it is big, read when it is small (as git does: a mapping of
/// a few pages costs more than reading them), copied when it had to be sorted.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// git reads files up to this size instead of mapping them.
const SMALL_FILE: u64 = 32 * 1024;

/// How much of a mapped file the check passes before letting its pages go.
const RELEASE_STEP: usize = 1 << 20;

/// A `packed-refs` file: checked, in name order.
pub struct Packed {
    bytes: Bytes,
    /// Where the records start (after the header line).
    start: usize,
    peeled: Peeled,
    hex_len: usize,
    /// Every id in the file is spelled in lowercase, as git writes them (and prints them).
    lowercase: bool,
}

/// One record: a ref and, if the file has one, its peeled value.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The name as stored (not necessarily a valid ref name).
    pub name: &'a [u8],
    /// The hex id (checked to be hex when the file was opened).
    pub hex: &'a [u8],
    /// The `^` line's hex id.
    pub peeled_hex: Option<&'a [u8]>,
}

impl Record<'_> {
    /// The stored id.
    pub fn id(&self) -> ObjectId {
        parse_hex(self.hex)
    }
}

/// Parses hex already checked by [`Packed::open`] (never fails: a slice that is somehow not
/// hex, or not of an id's length, gives the null id of its length rather than a panic).
///
/// Hex is parsed and printed here rather than by gix, whose SIMD code first asks the processor
/// what it supports: on a virtual machine that question (`cpuid`) costs tens of microseconds,
/// a fair part of a small listing. [`next_line`] is for the same reason.
pub fn parse_hex(hex: &[u8]) -> ObjectId {
    let kind = if hex.len() == 64 { gix::hash::Kind::Sha256 } else { gix::hash::Kind::Sha1 };
    let mut bytes = [0u8; 32];
    let n = kind.len_in_bytes();
    if hex.len() != 2 * n || hex_case(hex).is_none() {
        return ObjectId::null(kind);
    }
    let nibble = |c: u8| (c & 0xf) + if c > b'9' { 9 } else { 0 };
    for (b, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        *b = nibble(pair[0]) << 4 | nibble(pair[1]);
    }
    ObjectId::from_bytes_or_panic(&bytes[..n])
}

/// Appends `id` in lowercase hex to `out`.
pub fn push_hex(id: &gix::hash::oid, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in id.as_bytes() {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Where the first newline of `s` is (eight bytes at a time, with no processor feature test).
pub fn next_line(s: &[u8]) -> Option<usize> {
    memchr::arch::all::memchr::One::new(b'\n').find(s)
}

/// [`next_line`] as a method.
trait FindNewline {
    fn find_nl(&self) -> Option<usize>;
}

impl FindNewline for [u8] {
    fn find_nl(&self) -> Option<usize> {
        next_line(self)
    }
}

/// git's `isspace`: space, tab, newline, carriage return.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether every byte of `s` is a hex digit of either case (git's `hexval`).
#[cfg(test)]
fn is_hex(s: &[u8]) -> bool {
    hex_case(s).is_some()
}

/// Whether `s` is hex (`None` if not) and then whether it is all lowercase, eight bytes at a
/// time: a byte-by-byte test branches on digit or letter, which the processor cannot predict
/// in random ids, and that made checking `packed-refs` cost more than listing it.
fn hex_case(s: &[u8]) -> Option<bool> {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let mut lower = true;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        if !hex8(x, 0) {
            if !hex8(x, FOLD) {
                return None;
            }
            lower = false;
        }
    }
    for &b in words.remainder() {
        if !b.is_ascii_hexdigit() {
            return None;
        }
        lower &= !b.is_ascii_uppercase();
    }
    Some(lower)
}

/// Whether all eight bytes of `x` are hex digits, letters lowercase, or of either case when
/// `fold` is 0x20 in each byte. For bytes below 0x80, adding `0x7f - hi` to the low seven bits
/// sets the top bit exactly when the byte is above `hi`, and adding `0x80 - lo` when it is at
/// least `lo`; no sum carries into the next byte.
fn hex8(x: u64, fold: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    let in_range = |v: u64, lo: u8, hi: u8| {
        let low = v & !HIGH;
        !(low + ONES * u64::from(0x7f - hi)) & (low + ONES * u64::from(0x80 - lo))
    };
    let digit = in_range(x, b'0', b'9');
    let letter = in_range(x | fold, b'a', b'f');
    (digit | letter) & !x & HIGH == HIGH
}

/// git's `die_invalid_line`/`die_unterminated_line` messages for the text at `rest`.
fn invalid(shown: &str, rest: &[u8]) -> PackedError {
    let (kind, line) = match rest.find_nl() {
        Some(eol) => ("unexpected", &rest[..eol]),
        None => ("unterminated", rest),
    };
    let line =
        if line.len() < 80 { line.as_bstr().to_string() } else { format!("{}...", line[..75].as_bstr()) };
    PackedError(format!("{kind} line in {shown}: {line}"))
}

impl Packed {
    /// Reads `path` (`Ok(None)` when there is none, or it is empty). `shown` is the path as
    /// git names it in its messages.
    pub fn open(
        path: &std::path::Path,
        shown: &str,
        hash: gix::hash::Kind,
    ) -> Result<Option<Packed>, PackedError> {
        let io_err =
            |e: std::io::Error, what: &str| PackedError(format!("{what} {shown}: {}", crate::strerror(&e)));
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e, "couldn't read")),
        };
        let size = file.metadata().map_err(|e| io_err(e, "couldn't stat"))?.len();
        let bytes = if size == 0 {
            return Ok(None);
        } else if size <= SMALL_FILE {
            let mut buf = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(&file, size), &mut buf)
                .map_err(|e| io_err(e, "couldn't read"))?;
            Bytes::Owned(buf)
        } else {
            // SAFETY: git replaces `packed-refs` by renaming a new file over it, never by
            // writing into it, so the mapped file does not change under us.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(e, "couldn't read"))?)
        };
        Packed::from_bytes(bytes, shown, hash).map(Some)
    }

    /// Checks and (if needed) sorts `bytes`.
    fn from_bytes(bytes: Bytes, shown: &str, hash: gix::hash::Kind) -> Result<Packed, PackedError> {
        let hex_len = hash.len_in_hex();
        let mut packed = Packed { bytes, start: 0, peeled: Peeled::None, hex_len, lowercase: true };
        let mut sorted = false;
        if packed.bytes.first() == Some(&b'#') {
            let buf = &packed.bytes[..];
            let eol = buf.find_nl().ok_or_else(|| invalid(shown, buf))?;
            let traits = buf[..eol].strip_prefix(b"# pack-refs with:").ok_or_else(|| invalid(shown, buf))?;
            let has = |t: &[u8]| traits.split(|&b| b == b' ').any(|x| x == t);
            packed.peeled = if has(b"fully-peeled") {
                Peeled::Fully
            } else if has(b"peeled") {
                Peeled::Tags
            } else {
                Peeled::None
            };
            sorted = has(b"sorted");
            packed.start = eol + 1;
        }
        packed.verify_last_record(shown)?;
        if !sorted {
            packed.sort(shown)?;
            packed.verify_last_record(shown)?;
        }
        packed.lowercase = packed.check_records(shown)?;
        Ok(packed)
    }

    /// git's `verify_buffer_safe`: the last record ends with a newline and is long enough to
    /// hold an id.
    fn verify_last_record(&self, shown: &str) -> Result<(), PackedError> {
        let body = &self.bytes[self.start..];
        if body.is_empty() {
            return Ok(());
        }
        let last = record_start(body, body.len() - 1);
        if body[body.len() - 1] != b'\n' || body.len() - last < self.hex_len + 2 {
            return Err(invalid(shown, &body[last..]));
        }
        Ok(())
    }

    /// git's `sort_snapshot`: records (a ref line and its `^` line) in name order, in a copy
    /// when the file's order is not already that.
    fn sort(&mut self, shown: &str) -> Result<(), PackedError> {
        let body = &self.bytes[self.start..];
        let mut records: Vec<(usize, usize)> = Vec::new();
        let mut in_order = true;
        let mut pos = 0;
        while pos < body.len() {
            let Some(eol) = body[pos..].find_nl().map(|i| pos + i) else {
                return Err(invalid(shown, &body[pos..]));
            };
            if eol - pos < self.hex_len + 2 {
                return Err(invalid(shown, &body[pos..]));
            }
            let mut end = eol + 1;
            if body.get(end) == Some(&b'^') {
                end = body[end..].find_nl().map_or(body.len(), |i| end + i + 1);
            }
            if in_order {
                if let Some(&(s, l)) = records.last() {
                    in_order = self.name_at(&body[s..s + l]) < self.name_at(&body[pos..end]);
                }
            }
            records.push((pos, end - pos));
            pos = end;
        }
        if in_order {
            return Ok(());
        }
        records.sort_by(|a, b| self.name_at(&body[a.0..a.0 + a.1]).cmp(self.name_at(&body[b.0..b.0 + b.1])));
        let mut copy = Vec::with_capacity(body.len());
        for (s, l) in records {
            copy.extend_from_slice(&body[s..s + l]);
        }
        self.bytes = Bytes::Owned(copy);
        self.start = 0;
        Ok(())
    }

    /// The name part of a record (from after the id to the end of its first line), as git's
    /// record comparisons see it.
    fn name_at<'a>(&self, record: &'a [u8]) -> &'a [u8] {
        let rest = record.get(self.hex_len + 1..).unwrap_or_default();
        &rest[..rest.find_nl().unwrap_or(rest.len())]
    }

    /// git's `next_record` checks, for every record in order. A big mapped file's pages are let
    /// go as the check passes them: a listing touches only the records in its scope again, so
    /// checking the whole file costs no more memory than git's reading of part of it.
    /// Returns whether every id is in lowercase.
    fn check_records(&self, shown: &str) -> Result<bool, PackedError> {
        let body = &self.bytes[self.start..];
        let h = self.hex_len;
        let mut pos = 0;
        let mut released = 0;
        let mut lowercase = true;
        let mut check = |hex: &[u8]| match hex_case(hex) {
            Some(lower) => {
                lowercase &= lower;
                true
            }
            None => false,
        };
        while pos < body.len() {
            if self.start + pos - released >= RELEASE_STEP {
                released = self.release(released, self.start + pos);
            }
            let rest = &body[pos..];
            if rest.len() < h + 2 || !check(&rest[..h]) || !is_space(rest[h]) {
                return Err(invalid(shown, rest));
            }
            let Some(eol) = rest[h + 1..].find_nl().map(|i| h + 1 + i) else {
                return Err(invalid(shown, rest));
            };
            pos += eol + 1;
            if body.get(pos) == Some(&b'^') {
                let rest = &body[pos..];
                if rest.len() < h + 2 || !check(&rest[1..h + 1]) || rest[h + 1] != b'\n' {
                    return Err(invalid(shown, rest));
                }
                pos += h + 2;
            }
        }
        if self.bytes.len() > RELEASE_STEP {
            self.release(released, self.bytes.len());
        }
        Ok(lowercase)
    }

    /// Whether every id in the file is spelled in lowercase (then a listing may copy them).
    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// Drops the pages of the mapping between offsets `from` and `to` (whole pages only) from
    /// the resident set; returns where the next release starts.
    fn release(&self, from: usize, to: usize) -> usize {
        const PAGE: usize = 4096;
        let Bytes::Mapped(m) = &self.bytes else { return to };
        let (start, end) = (from.div_ceil(PAGE) * PAGE, to / PAGE * PAGE);
        if end > start {
            // SAFETY: the mapping is a read-only view of a file that is replaced, never written
            // (see `open`); pages touched again are read from the file. Only a hint.
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
        }
        end.max(from)
    }

    /// The header's peeling trait.
    pub fn peeled(&self) -> Peeled {
        self.peeled
    }

    /// The records in name order, from the first whose name is not below `from`.
    pub fn records_from(&self, from: &[u8]) -> Records<'_> {
        let body = &self.bytes[self.start..];
        let pos = if from.is_empty() { 0 } else { self.lower_bound(from) };
        Records { body, pos, hex_len: self.hex_len }
    }

    /// The id stored for `name` (git's `packed_read_raw_ref`, a binary search).
    pub fn find(&self, name: &[u8]) -> Option<ObjectId> {
        self.find_record(name).map(|rec| rec.id())
    }

    /// The record of `name`, found by a binary search.
    pub fn find_record(&self, name: &[u8]) -> Option<Record<'_>> {
        let body = &self.bytes[self.start..];
        let pos = self.lower_bound(name);
        let rec = Records { body, pos, hex_len: self.hex_len }.next()?;
        (rec.name == name).then_some(rec)
    }

    /// The offset of the first record whose name is not below `name` (git's
    /// `find_reference_location` without `mustexist`).
    fn lower_bound(&self, name: &[u8]) -> usize {
        let body = &self.bytes[self.start..];
        let (mut lo, mut hi) = (0, body.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let rec = record_start(&body[..hi], mid);
            if self.name_at(&body[rec..]) < name {
                lo = record_end(body, mid, hi);
            } else {
                hi = rec;
            }
        }
        lo
    }
}

/// git's `find_start_of_record`: the start of the record holding `body[p]`.
fn record_start(body: &[u8], mut p: usize) -> usize {
    while p > 0 && (body[p - 1] != b'\n' || body[p] == b'^') {
        p -= 1;
    }
    p
}

/// git's `find_end_of_record`: the start of the record after the one holding `body[p]`, or
/// `end`.
fn record_end(body: &[u8], mut p: usize, end: usize) -> usize {
    loop {
        p += 1;
        if p >= end || (body[p - 1] == b'\n' && body[p] != b'^') {
            return p.min(end);
        }
    }
}

/// The records of a checked file, in order.
pub struct Records<'a> {
    body: &'a [u8],
    pos: usize,
    hex_len: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let h = self.hex_len;
        let rest = self.body.get(self.pos..)?;
        if rest.len() < h + 2 {
            self.pos = self.body.len();
            return None;
        }
        let eol = rest[h + 1..].find_nl().map_or(rest.len(), |i| h + 1 + i);
        let record = Record { hex: &rest[..h], name: &rest[h + 1..eol], peeled_hex: None };
        let mut next = eol + 1;
        let peeled_hex = match rest.get(next) {
            Some(b'^') => {
                let hex = rest.get(next + 1..next + 1 + h);
                next += h + 2;
                hex
            }
            _ => None,
        };
        self.pos += next;
        Some(Record { peeled_hex, ..record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    fn open(text: &str) -> Result<Packed, PackedError> {
        Packed::from_bytes(Bytes::Owned(text.as_bytes().to_vec()), "./packed-refs", gix::hash::Kind::Sha1)
    }

    fn names(p: &Packed) -> Vec<String> {
        p.records_from(b"").map(|r| r.name.to_str_lossy().into_owned()).collect()
    }

    #[test]
    fn sorted_file_is_walked_in_place() {
        let text = format!(
            "# pack-refs with: peeled fully-peeled sorted \n{A} refs/heads/main\n{B} refs/tags/v1\n^{C}\n{C} refs/tags/v2\n"
        );
        let p = open(&text).unwrap();
        assert_eq!(p.peeled(), Peeled::Fully);
        assert!(matches!(p.bytes, Bytes::Owned(_)) && p.start > 0, "not copied");
        assert_eq!(names(&p), ["refs/heads/main", "refs/tags/v1", "refs/tags/v2"]);
        let v1 = p.records_from(b"refs/tags/").next().unwrap();
        assert_eq!((v1.name, v1.peeled_hex), (&b"refs/tags/v1"[..], Some(C.as_bytes())));
        assert_eq!(p.find(b"refs/tags/v2"), Some(parse_hex(C.as_bytes())));
        assert_eq!(p.find(b"refs/tags/v1"), Some(parse_hex(B.as_bytes())));
        assert_eq!(p.find(b"refs/heads/main"), Some(parse_hex(A.as_bytes())));
        assert_eq!(p.find(b"refs/tags/v"), None);
        assert_eq!(p.find(b"refs/heads"), None);
        assert_eq!(p.find(b"zzz"), None);
        assert_eq!(p.records_from(b"refs/u").count(), 0);
        assert_eq!(p.records_from(b"a").count(), 3);
    }

    #[test]
    fn unsorted_file_is_sorted_as_git_sorts_it() {
        let text = format!("{B} refs/tags/v1\n^{C}\n{A} refs/heads/main\n{C} refs/heads/a\n");
        let p = open(&text).unwrap();
        assert_eq!(p.peeled(), Peeled::None);
        assert_eq!(names(&p), ["refs/heads/a", "refs/heads/main", "refs/tags/v1"]);
        assert_eq!(p.records_from(b"refs/tags/").next().unwrap().peeled_hex, Some(C.as_bytes()));
        assert_eq!(p.find(b"refs/heads/main"), Some(parse_hex(A.as_bytes())));
        // Header without `sorted`: sorted too.
        let text = format!("# pack-refs with: peeled \n{B} refs/z\n{A} refs/a\n");
        let p = open(&text).unwrap();
        assert_eq!(p.peeled(), Peeled::Tags);
        assert_eq!(names(&p), ["refs/a", "refs/z"]);
    }

    #[test]
    fn many_records_binary_search() {
        let mut text = String::from("# pack-refs with: peeled fully-peeled sorted \n");
        for i in 0..1000 {
            text.push_str(&format!("{A} refs/tags/t{i:04}\n"));
            if i % 3 == 0 {
                text.push_str(&format!("^{B}\n"));
            }
        }
        let p = open(&text).unwrap();
        for i in 0..1000 {
            let name = format!("refs/tags/t{i:04}");
            assert_eq!(p.find(name.as_bytes()), Some(parse_hex(A.as_bytes())), "{name}");
            let first = p.records_from(name.as_bytes()).next().unwrap();
            assert_eq!(first.name, name.as_bytes());
            assert_eq!(first.peeled_hex.is_some(), i % 3 == 0);
        }
        assert_eq!(p.records_from(b"refs/tags/t05").count(), 500);
    }

    #[test]
    fn damaged_files_fail_with_gits_messages() {
        let cases: Vec<(String, &str)> = vec![
            (format!("{A} refs/a\ngarbage line\n"), "unexpected line in ./packed-refs: garbage line"),
            (format!("# pock-refs with:\n{A} refs/a\n"), "unexpected line in ./packed-refs: # pock-refs with:"),
            ("# pack-refs with: sorted".into(), "unterminated line in ./packed-refs: # pack-refs with: sorted"),
            (format!("{A} refs/a\n{A} refs/b"), "unterminated line in ./packed-refs: 1111111111111111111111111111111111111111 refs/b"),
            (format!("# pack-refs with: sorted \n{A} refs/a\n^zz\n{A} refs/b\n"), "unexpected line in ./packed-refs: ^zz"),
            (format!("# pack-refs with: sorted \n{A} refs/a\n^{A}x\n{A} refs/b\n"), "unexpected line in ./packed-refs: ^1111111111111111111111111111111111111111x"),
            (format!("# pack-refs with: sorted \n{A}xrefs/a\n"), "unexpected line in ./packed-refs: 1111111111111111111111111111111111111111xrefs/a"),
            (format!("# pack-refs with: sorted \nzz{} refs/a\n", &A[2..]), "unexpected line in ./packed-refs: zz11111111111111111111111111111111111111 refs/a"),
            (format!("{A} refs/a\nxx\n{A} refs/b\n"), "unexpected line in ./packed-refs: xx"),
            (format!("{A} refs/a\n{}\n", "0".repeat(100)), "unexpected line in ./packed-refs: 000000000000000000000000000000000000000000000000000000000000000000000000000..."),
            (format!("{A} refs/a\n{A}\n"), "unexpected line in ./packed-refs: 1111111111111111111111111111111111111111"),
            (format!("^{A}\n{A} refs/a\n"), "unexpected line in ./packed-refs: ^1111111111111111111111111111111111111111"),
            ("\n".into(), "unexpected line in ./packed-refs: "),
            // The last record is the ref line with its `^` line: git names the ref line.
            (format!("# pack-refs with: sorted \n{A} refs/a\n^{A}"), "unexpected line in ./packed-refs: 1111111111111111111111111111111111111111 refs/a"),
        ];
        for (text, want) in cases {
            match open(&text) {
                Ok(_) => panic!("accepted: {text:?}"),
                Err(e) => assert_eq!(e.0, want, "{text:?}"),
            }
        }
    }

    #[test]
    fn odd_but_accepted_files() {
        // A tab after the id, CRLF line ends (the name keeps its \r), an empty body.
        let p = open(&format!("{A}\trefs/a\n{B} refs/b\r\n")).unwrap();
        assert_eq!(names(&p), ["refs/a", "refs/b\r"]);
        assert_eq!(names(&open("# pack-refs with: peeled \n").unwrap()), Vec::<String>::new());
        // Uppercase hex is hex.
        let p = open(&format!("{} refs/a\n", "ABCDEF".repeat(7).get(..40).unwrap())).unwrap();
        assert_eq!(p.find(b"refs/a").unwrap().to_string(), "abcdef".repeat(7)[..40]);
        // Duplicate names (only a hand-edited file has them) are both kept.
        let p = open(&format!("{A} refs/a\n{B} refs/a\n")).unwrap();
        assert_eq!(names(&p), ["refs/a", "refs/a"]);
    }

    #[test]
    fn hex_check_agrees_with_bytewise() {
        for b in 0..=255u8 {
            for at in 0..11 {
                let mut s = *b"0123456789aBcDeF0123456789abcdefABCDEF0123";
                s[at * 4 % s.len()] = b;
                let want = s.iter().all(u8::is_ascii_hexdigit);
                assert_eq!(is_hex(&s), want, "{b:#x} at {at}");
                let lower = s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
                assert_eq!(hex_case(&s), want.then_some(lower), "{b:#x} at {at}");
                assert_eq!(is_hex(&s[..at]), s[..at].iter().all(u8::is_ascii_hexdigit));
            }
        }
        // Words of hex digits and their neighbours, mostly hex.
        let alphabet = b"0123456789abcdefABCDEF0123456789abcdef/:@G`g\x00\x7f\x80\xb0\xe1\xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            let mut w = [0u8; 8];
            for b in &mut w {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % 64) as usize;
                *b = alphabet[if i < 56 { i % 38 } else { 38 + i % (alphabet.len() - 38) }];
            }
            let x = u64::from_le_bytes(w);
            assert_eq!(hex8(x, 0x2020_2020_2020_2020), w.iter().all(u8::is_ascii_hexdigit), "{w:?}");
            let lower = w.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
            assert_eq!(hex8(x, 0), lower, "{w:?}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"0123456789abcdef^#\n \r\trefs/heads/x";
        for len in 0..400 {
            let mut text = Vec::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            if let Ok(p) = Packed::from_bytes(Bytes::Owned(text), "x", gix::hash::Kind::Sha1) {
                for r in p.records_from(b"") {
                    let _ = (r.id(), p.find(r.name), p.records_from(r.name).count());
                }
                let _ = p.find(b"refs/heads/x");
            }
        }
    }
}
