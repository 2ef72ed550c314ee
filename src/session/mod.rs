//! One connection: picks v0/v1 or v2 and owns the state of each request. Reads pkt-lines
//! through [`crate::wire`], asks [`crate::negotiate`] and [`crate::select`] for decisions and
//! streams the pack through [`crate::pack`].

pub mod caps;
pub mod v0;
pub mod v2;

use std::io::{Read, Write};

use gix::hash::ObjectId;

use crate::pack::plan::{Plan, PlanOptions};
use crate::pack::writer::{self, PackOptions};
use crate::pack::ObjNum;
use crate::refs::Refs;
use crate::repo::Repo;
use crate::select::policy::WantRules;
use crate::select::{bitmap, walk};
use crate::wire::pktline::{Packet, PktReader, PktWriter, ReadError};
use crate::wire::sideband::{Framing, SideBand};

/// Protocol version of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The original protocol.
    V0,
    /// v0 preceded by a `version 1` line.
    V1,
    /// Command-based protocol v2.
    V2,
}

/// How this connection is run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `GIT_NAMESPACE`, if any.
    pub namespace: Option<String>,
    /// `GIT_TRACE_PACKET` destination, if tracing.
    pub trace: Option<crate::trace::Trace>,
    /// Protocol version, from `GIT_PROTOCOL`.
    pub version: Version,
    /// One request, one response (smart HTTP).
    pub stateless_rpc: bool,
    /// Only print the advertisement.
    pub advertise_refs: bool,
    /// The `agent=` value advertised (`GIT_USER_AGENT`, sanitized; see [`caps::agent`]).
    pub agent: String,
    /// The output is this descriptor (the front-ends' stdout) and nothing between counts or
    /// transforms the bytes: cache hits are sent to it with `sendfile`.
    pub output_fd: Option<i32>,
    /// The front-end says "busy" in its envelope (HTTP 503): a request refused by admission
    /// control before any byte of its response went out gets nothing from the session.
    pub busy_by_envelope: bool,
}

/// Why a session ended in failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client sent something we refuse; the message is git's wording (without `fatal: `).
    /// Like git, only `fatal:` on stderr: the client sees the connection end.
    #[error("{0}")]
    Protocol(String),
    /// Refused with an `ERR` line to the client as git does (the message is git's wording).
    #[error("{0}")]
    Refused(String),
    /// Already reported to the client (ERR or band 3); the message is for stderr.
    #[error("{0}")]
    Reported(String),
    /// Reading failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing to the client failed (it went away).
    #[error("{0}")]
    Write(#[from] std::io::Error),
    /// Something on our side failed.
    #[error("{0}")]
    Internal(String),
    /// A configured value git dies on where it reads it (git's messages).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// Refused by admission control: the message, the seconds to retry after, and whether it
    /// was already told to the client on band 3 (the response had started). Otherwise nothing
    /// of the response went out yet: `ERR`, or the front-end's own refusal (see
    /// [`Settings::busy_by_envelope`]).
    #[error("{0}")]
    Busy(String, u64, bool),
}

impl SessionError {
    fn internal(e: impl std::fmt::Display) -> Self {
        SessionError::Internal(e.to_string())
    }
}

/// What one connection did, for the operator's log line. Filled as the session goes, so it is
/// meaningful after a failure too.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Commands served, in order (`advertise`, `ls-refs`, `fetch`; `upload-pack` for v0/v1).
    pub commands: Vec<&'static str>,
    /// `want` lines.
    pub wants: usize,
    /// `have` lines.
    pub haves: usize,
    /// Whether the request was shallow (`shallow`/`deepen*`).
    pub shallow: bool,
    /// The filter spec, if any.
    pub filter: Option<String>,
    /// Objects in the packs sent.
    pub objects: u64,
    /// Bytes of the packs sent.
    pub bytes: u64,
    /// The client's `agent=`, if it sent one.
    pub client_agent: Option<String>,
    /// The client's `session-id=`, if it sent one.
    pub client_sid: Option<String>,
    /// The response cache: `hit`, `follow`, `miss` (written to the cache), `uncached` (not
    /// stored: not seen often enough, or a problem); `None` when the cache is off.
    pub cache: Option<&'static str>,
    /// Bytes served from the cache (hit or follow).
    pub cache_bytes: u64,
    /// A cache or admission problem, served around (for the log).
    pub host_problem: Option<String>,
    /// Time waited for an admission slot.
    pub queue: std::time::Duration,
    /// Time spent counting (enumerating and planning) the pack.
    pub counting: std::time::Duration,
    /// Time spent writing the pack.
    pub writing: std::time::Duration,
}

/// Serves one connection on `input`/`output`.
pub fn serve<R: Read, W: Write>(
    repo: &Repo,
    input: R,
    output: W,
    settings: Settings,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let mut reader = PktReader::new(input);
    reader.set_max_request_bytes(repo.config.limits.max_request_bytes);
    let mut writer = PktWriter::new(output);
    writer.set_output_fd(settings.output_fd);
    if let Some(trace) = &settings.trace {
        let mut rt = crate::trace::Tracer::new(trace.clone(), '<');
        reader.set_trace(Box::new(move |p| match p {
            Packet::Data(d) => rt.packet(Some(d)),
            Packet::Flush => rt.packet(None),
            Packet::Delim => rt.packet(Some(b"0001")),
            Packet::ResponseEnd => rt.packet(Some(b"0002")),
        }));
        let mut wt = crate::trace::Tracer::new(trace.clone(), '>');
        writer.set_trace(Box::new(move |d| wt.packet(d)));
    }
    let res = match settings.version {
        Version::V2 => v2::serve(repo, &mut reader, &mut writer, &settings, summary),
        Version::V0 | Version::V1 => v0::serve(repo, &mut reader, &mut writer, &settings, summary),
    };
    let res = res.map_err(|e| match e {
        SessionError::Read(ReadError::TooLarge(n)) => SessionError::Refused(format!(
            "upload-pack: request larger than {n} bytes (packserve.maxRequestBytes)"
        )),
        other => other,
    });
    // A busy refusal drops the response's unsent start (section headers) and says only that.
    if let Err(SessionError::Busy(msg, _, false)) = &res {
        let busy_by_envelope = settings.busy_by_envelope;
        let out = writer.discard();
        if !busy_by_envelope {
            let mut w = PktWriter::new(out);
            let _ = w.error(&format!("upload-pack: {msg}"));
            let _ = w.flush();
        }
        return res;
    }
    // Refusals git reports in the protocol get their ERR line.
    if let Err(SessionError::Refused(msg)) = &res {
        let _ = writer.error(msg);
    }
    // Whatever happened, push out what was written.
    let flushed = writer.flush();
    res?;
    flushed?;
    Ok(())
}

/// What this connection advertises.
pub(crate) fn advertised(repo: &Repo, settings: &Settings, no_done: bool) -> caps::Advertise {
    let c = &repo.config;
    caps::Advertise {
        agent: settings.agent.clone(),
        object_format: v0::hash_name(repo.odb.hash_kind()),
        shallow: true,
        allow_tip: c.allow.tip || c.allow.any,
        allow_reachable: c.allow.reachable || c.allow.any,
        no_done,
        filter: c.allow_filter,
        ref_in_want: c.allow_ref_in_want,
        sideband_all: c.allow_sideband_all,
        object_info: c.advertise_object_info,
        unborn: c.unborn == crate::config::Unborn::Advertise,
        session_id: c.advertise_sid.then(|| crate::trace2::session_id().to_owned()),
        bundle_uri: false,
        packfile_uris: false,
    }
}

/// The refs this connection may see, read for one command: every ref of the namespace, or
/// only those under `prefixes` (`ls-refs`' `ref-prefix` values; none: every name).
pub(crate) fn read_refs(
    repo: &Repo,
    settings: &Settings,
    prefixes: Option<&[gix::bstr::BString]>,
) -> Result<Refs, SessionError> {
    use crate::refs::{RefView, Scope};
    let view = RefView { namespace: settings.namespace.clone(), hide: repo.config.hide_refs.clone() };
    let ns = view.prefix();
    let scope = match prefixes {
        None => Scope::all(ns.as_bytes()),
        Some(p) => Scope::prefixes(ns.as_bytes(), p),
    };
    let (dirs, shown) = repo.ref_dirs();
    Refs::read(&dirs, &shown, repo.odb.hash_kind(), &view, scope).map_err(SessionError::internal)
}

/// The want rules for this connection: git's `allow_uor` in v0/v1 (stateless requests may name
/// anything reachable from a tip, as refs may have moved); in v2 anything reachable from a
/// visible ref, which is stricter than git (that serves any object) unless allowAnySHA1InWant.
pub(crate) fn want_rules(
    repo: &Repo,
    refs: &Refs,
    v2: bool,
    stateless: bool,
) -> Result<WantRules, SessionError> {
    let allow = repo.config.allow;
    // The advertised tips, and the order reachability is checked from: most likely first
    // (HEAD, then the refs in order, branches before tags, then the hidden ones).
    let mut tips: gix::hashtable::HashSet<ObjectId> = gix::hashtable::HashSet::default();
    let mut reach_from: Vec<ObjectId> = Vec::new();
    for r in refs.advertised(&repo.odb) {
        let r = r.map_err(SessionError::internal)?;
        for id in std::iter::once(r.id.get()).chain(r.peeled.map(|p| p.get())) {
            if tips.insert(id) {
                reach_from.push(id);
            }
        }
    }
    let hidden_list = refs.hidden_tips(&repo.odb).map_err(SessionError::internal)?;
    let hidden_allowed = allow.tip || allow.reachable;
    let reach_hidden = if v2 { allow.reachable } else { hidden_allowed };
    if reach_hidden {
        let mut listed = tips.clone();
        reach_from.extend(hidden_list.iter().filter(|id| listed.insert(**id)).copied());
    }
    let hidden: gix::hashtable::HashSet<ObjectId> = hidden_list.into_iter().collect();
    Ok(WantRules {
        tips,
        extra_tips: if hidden_allowed { hidden } else { Default::default() },
        reachable: v2 || stateless || allow.reachable,
        reach_from,
        any: allow.any,
    })
}

/// Annotated tags to include in a pack (`include-tag`), if asked for.
pub(crate) fn included_tags(repo: &Repo, refs: &Refs, asked: bool) -> Result<Vec<ObjectId>, SessionError> {
    if !asked {
        return Ok(Vec::new());
    }
    refs.annotated_tags(&repo.odb).map_err(SessionError::internal)
}

/// Checks a parsed request against the configured [`Limits`](crate::config::Limits); a request
/// over one is refused with an `ERR` line naming the key that sets it.
pub(crate) fn check_limits(
    limits: &crate::config::Limits,
    wants: usize,
    haves: usize,
    deepen: &DeepenArgs,
) -> Result<(), SessionError> {
    if wants as u64 > limits.max_wants {
        return Err(SessionError::Refused(format!(
            "upload-pack: more than {} wants (packserve.maxWants)",
            limits.max_wants
        )));
    }
    if haves as u64 > limits.max_haves {
        return Err(SessionError::Refused(format!(
            "upload-pack: more than {} haves (packserve.maxHaves)",
            limits.max_haves
        )));
    }
    if u64::from(deepen.depth) > limits.max_depth {
        return Err(SessionError::Refused(format!(
            "upload-pack: deepen {} is deeper than {} (packserve.maxDepth)",
            deepen.depth, limits.max_depth
        )));
    }
    Ok(())
}

/// Checks the wants; a refused one is answered `ERR upload-pack: not our ref <oid>`. As in git,
/// a want of an object the repository lacks is refused first, whatever names it (a ref whose
/// object is missing is advertised with the id it stores).
pub(crate) fn check_wants<W: Write>(
    repo: &Repo,
    w: &mut PktWriter<W>,
    wants: &[ObjectId],
    rules: &WantRules,
) -> Result<(), SessionError> {
    let missing = wants.iter().find(|id| !repo.odb.exists(id)).copied();
    let refused = match missing {
        Some(id) => Some(id),
        None => refused_wants(repo, wants, rules)?.into_iter().next(),
    };
    if let Some(bad) = refused {
        let msg = format!("upload-pack: not our ref {}", bad.to_hex());
        w.error(&msg)?;
        w.flush()?;
        return Err(SessionError::Reported(format!("git {msg}")));
    }
    Ok(())
}

/// What to pack, in plain values.
pub(crate) struct PackRequest<'a> {
    pub wants: &'a [ObjectId],
    /// Commits whose parents are not walked (shallow boundary of this request).
    pub shallow: gix::hashtable::HashSet<ObjectId>,
    /// The partial clone filter.
    pub filter: Option<crate::select::filter::ObjectFilter>,
    pub common: &'a [ObjectId],
    pub include_tags: Vec<ObjectId>,
    pub framing: Framing,
    pub progress: bool,
    pub options: PackOptions,
    /// v2 `packfile-uris`: the configured objects the client may get from a URI instead. When
    /// set, [`send_pack`] writes the `packfile-uris` section (for those of them that the pack
    /// would have carried) and the `packfile` header itself, once the objects are counted.
    pub uris: Option<&'a [crate::config::BlobPackfileUri]>,
    /// Nothing of the response has gone out before the pack section but what the caller may
    /// drop (v2): a busy refusal can then be the whole answer (`ERR`, HTTP 503).
    pub busy_as_err: bool,
}

/// Sends the pack section: from the response cache when an identical response is there or
/// being written (access checks have run: the request only names what it may see), else
/// generated under an admission slot, and stored in the cache as it streams. See
/// docs/cache-and-limits.md.
pub(crate) fn send_pack<W: Write>(
    repo: &Repo,
    writer: &mut PktWriter<W>,
    req: PackRequest<'_>,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    use crate::host::cache::{self, FollowError, Lookup};
    use crate::host::slots::{self, Admission};
    let cfg = &repo.config;
    // Cached: the framed pack section, when it is the whole section (no packfile-uris lines
    // written in it, not raw v0 whose end is the connection's) and the configuration is sound.
    let cacheable = cfg.cache.dir.is_some()
        && req.uris.is_none()
        && req.framing != Framing::Raw
        && cfg.check(&[crate::config::ReadAt::Pack]).is_ok();
    let (lookup, problem) = match cacheable.then(|| cache_key(repo, &req)).flatten() {
        Some(key) => cache::lookup(&cfg.cache, &key),
        None => (Lookup::Uncached, None),
    };
    if problem.is_some() {
        summary.host_problem = problem;
    }
    let mut cache_writer = None;
    match lookup {
        Lookup::Hit(hit) => {
            summary.cache = Some("hit");
            let sent = match writer.output_fd() {
                Some(fd) => {
                    writer.flush()?;
                    hit.send_to_fd(fd)?
                }
                None => None,
            };
            let n = match sent {
                Some(n) => n,
                None => hit.copy_to(&mut |d| writer.raw(d))?,
            };
            summary.cache_bytes += n;
            writer.flush()?;
            return Ok(());
        }
        Lookup::Follow(follow) => {
            summary.cache = Some("follow");
            let framed = |b: &[u8]| whole_packets(b);
            // The writer's keep-alive packets are in what is followed: none of our own, so the
            // response is the writer's, byte for byte.
            let mut out = |d: &[u8]| -> std::io::Result<()> {
                writer.raw(d)?;
                writer.flush()
            };
            let res = follow.copy_to(&mut out, &framed);
            match res {
                Ok(n) => {
                    summary.cache_bytes += n;
                    return Ok(());
                }
                Err(FollowError::Io(e)) => return Err(SessionError::Write(e)),
                Err(FollowError::Abandoned { sent }) if sent > 0 => {
                    summary.cache_bytes += sent;
                    let msg = "the response this request followed in the cache was abandoned by its writer; try again";
                    let mut sb = SideBand::new(writer, req.framing, req.progress);
                    let _ = sb.error(&format!("fatal: {msg}"));
                    return Err(SessionError::Reported(msg.into()));
                }
                Err(FollowError::Abandoned { .. }) => {
                    // Nothing sent yet: serve it ourselves.
                    summary.cache = Some("uncached");
                    summary.host_problem.get_or_insert_with(|| "cache: followed writer gave up".into());
                }
            }
        }
        Lookup::Write(w) => {
            summary.cache = Some("miss");
            cache_writer = Some(w);
        }
        Lookup::Uncached => summary.cache = cfg.cache.dir.as_ref().map(|_| "uncached"),
    }
    let _slots = match slots::admit(&cfg.admission, &repo_slot_id(repo)) {
        Admission::Admitted(a, waited) => {
            summary.queue = waited;
            Some(a)
        }
        Admission::Unlimited(problem) => {
            if problem.is_some() {
                summary.host_problem = problem;
            }
            None
        }
        Admission::Busy(waited, msg) => {
            summary.queue = waited;
            drop(cache_writer);
            let retry = cfg.admission.queue_timeout.as_secs().max(1);
            if req.busy_as_err && writer.unsent_since_flush() {
                return Err(SessionError::Busy(msg, retry, false));
            }
            let mut sb = SideBand::new(writer, req.framing, req.progress);
            let _ = sb.error(&format!("fatal: upload-pack: {msg}"));
            return Err(SessionError::Busy(msg, retry, true));
        }
    };
    let Some(cw) = cache_writer else { return generate_pack(repo, writer, req, summary) };
    let cw = std::rc::Rc::new(std::cell::RefCell::new(cw));
    let tee = cw.clone();
    writer.set_tap(Box::new(move |d| tee.borrow_mut().write(d)));
    let res = generate_pack(repo, writer, req, summary);
    let client_error = writer.take_tap();
    let Ok(cw) = std::rc::Rc::try_unwrap(cw).map(|c| c.into_inner()) else {
        return Err(SessionError::Internal("cache writer still shared".into()));
    };
    // Whole, even when our own client went away meanwhile (others may be following).
    if res.is_ok() {
        if let Some(p) = cw.commit() {
            summary.host_problem = Some(format!("cache: {p}"));
        }
    } else {
        cw.abandon();
    }
    if let Some(e) = client_error {
        return Err(SessionError::Write(e));
    }
    res
}

/// How many leading bytes of `b` are whole pkt-lines.
fn whole_packets(b: &[u8]) -> usize {
    let mut at = 0;
    while b.len() - at >= 4 {
        let Ok(hex) = std::str::from_utf8(&b[at..at + 4]) else { break };
        let Ok(n) = usize::from_str_radix(hex, 16) else { break };
        let n = if n < 4 { 4 } else { n };
        if b.len() - at < n {
            break;
        }
        at += n;
    }
    at
}

/// A stable name of the repository for its admission slots (a hash of its real path).
fn repo_slot_id(repo: &Repo) -> String {
    let dir = repo.common_dir().canonicalize().unwrap_or_else(|_| repo.common_dir().to_owned());
    let mut h = crate::host::KeyHasher::default();
    h.field("repo", dir.as_os_str().as_encoded_bytes());
    h.finish().map_or_else(|| "unknown".into(), |k| k[..16].to_owned())
}

/// The cache key of a pack section: everything its bytes depend on. The request as the pack
/// machinery sees it, after the access checks and negotiation resolved it to object ids (wants
/// with want-ref and deepen's extra wants, common commits, the shallow boundary with deepen-not
/// resolved, the annotated tags include-tag adds, the filter), the stream's shape (framing,
/// progress, ofs-delta, thin-pack), the configuration that shapes the pack, and the
/// repository's identity and pack files (a repack changes the bytes, so a new key).
fn cache_key(repo: &Repo, req: &PackRequest<'_>) -> Option<String> {
    let mut h = crate::host::KeyHasher::default();
    h.field("version", concat!("packserve-cache-1 ", env!("CARGO_PKG_VERSION")).as_bytes());
    let dir = repo.common_dir().canonicalize().ok()?;
    h.field("repo", dir.as_os_str().as_encoded_bytes());
    let objects = dir.join("objects");
    let mut packs: Vec<Vec<u8>> = std::fs::read_dir(objects.join("pack"))
        .ok()?
        .flatten()
        .map(|e| e.file_name().as_encoded_bytes().to_vec())
        .filter(|n| !n.starts_with(b"tmp_") && !n.starts_with(b".tmp"))
        .collect();
    packs.sort();
    for p in &packs {
        h.field("pack", p);
    }
    h.field("alternates", &std::fs::read(objects.join("info/alternates")).unwrap_or_default());
    let mut shallow_repo: Vec<_> = repo.odb.shallow().iter().map(|id| id.to_hex().to_string()).collect();
    shallow_repo.sort();
    h.field("repo-shallow", shallow_repo.join(",").as_bytes());
    let c = &repo.config;
    let shaping = format!(
        "bitmaps={} bitmapDeltaSearch={} window={} depth={}",
        c.use_bitmaps, c.bitmap_delta_search, c.pack_window, c.pack_depth
    );
    h.field("config", shaping.as_bytes());
    let ids =
        |v: &mut dyn Iterator<Item = &ObjectId>| v.map(|id| id.to_hex().to_string()).collect::<Vec<_>>();
    h.field("wants", ids(&mut req.wants.iter()).join(",").as_bytes());
    h.field("common", ids(&mut req.common.iter()).join(",").as_bytes());
    let mut boundary = ids(&mut req.shallow.iter());
    boundary.sort();
    h.field("shallow", boundary.join(",").as_bytes());
    let mut tags = ids(&mut req.include_tags.iter());
    tags.sort();
    h.field("tags", tags.join(",").as_bytes());
    h.field("filter", format!("{:?}", req.filter).as_bytes());
    let shape = format!(
        "framing={:?} progress={} ofs={} thin={}",
        req.framing, req.progress, req.options.ofs_delta, req.options.thin
    );
    h.field("shape", shape.as_bytes());
    h.finish()
}

/// Enumerates, plans and streams the pack. An error after the first byte is reported on band 3
/// (or as `ERR`), so the client never takes a truncated pack for a complete one.
fn generate_pack<W: Write>(
    repo: &Repo,
    writer: &mut PktWriter<W>,
    req: PackRequest<'_>,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let started = std::time::Instant::now();
    let mut sb = SideBand::new(writer, req.framing, req.progress);
    let result = (|| -> Result<writer::PackStats, SessionError> {
        // git's pack-objects reads its configuration when it starts.
        repo.config.check(&[crate::config::ReadAt::Pack])?;
        let walk_req = walk::Request {
            wants: req.wants.to_vec(),
            common: req.common.to_vec(),
            include_tags: req.include_tags.clone(),
            shallow: req.shallow.clone(),
            filter: req.filter.clone(),
            bitmap_thin_bases: repo.config.bitmap_delta_search,
            exclude: req.uris.map(|u| u.iter().map(|e| e.object).collect()).unwrap_or_default(),
        };
        // Keep-alive packets while counting (uploadpack.keepAlive), so proxies don't cut us off;
        // not before a section header that is still to come, unless lines are on band 1 too.
        let keepalive = repo.config.keepalive.filter(|_| req.uris.is_none() || sb.lines_on_band_1());
        let mut last = std::time::Instant::now();
        let mut tick = || {
            if keepalive.is_some_and(|k| last.elapsed() >= k) {
                let _ = sb.keepalive();
                last = std::time::Instant::now();
            }
        };
        // Reachability bitmaps when the request allows them, else the walk.
        let conditions = bitmap::Conditions {
            shallow: !req.shallow.is_empty() || !repo.odb.shallow().is_empty(),
            filter: req.filter.as_ref().is_some_and(|f| !f.filter.decides_by_type()),
            ..bitmap_conditions(repo)
        };
        let packs = repo.packs().map_err(SessionError::internal)?;
        let index = bitmap::open_if_eligible(packs, &repo.common_dir().join("objects/pack"), conditions);
        let sel = bitmap::select_or_walk(
            index.as_ref(),
            &repo.odb,
            &walk_req,
            req.options.ofs_delta,
            &mut walk::Ticker::new(&mut tick),
        )
        .map_err(SessionError::internal)?;
        // A filtered client may lack what the boundary says it has: no thin deltas then.
        let mut options = req.options;
        options.thin &= req.filter.is_none();
        if let Some(uris) = req.uris {
            write_uri_sections(&mut sb, uris, &sel.excluded)?;
        }
        let how = if sel.used_bitmap() { " (bitmap)" } else { "" };
        sb.progress(&format!("Enumerating objects: {}, done{how}.\n", sel.len()))?;
        // The walk's cache of decoded trees is not needed while the pack is planned and written.
        repo.odb.drop_caches();
        let client_has = |num| sel.client.has(num);
        let name_hash = |num| sel.name_hash(num);
        // The client's versions of the sent paths (git's preferred bases): what new deltas may
        // be made against and, without bitmaps, what stored deltas may stay against.
        let mut client_candidates: Vec<(ObjNum, gix::objs::Kind, u32)> = sel
            .thin_bases
            .iter()
            .flat_map(|(&hash, v)| v.iter().map(move |&(num, kind)| (num, kind, hash)))
            .collect();
        client_candidates.sort_unstable_by_key(|c| c.0);
        client_candidates.dedup_by_key(|c| c.0);
        let preferred = |num: ObjNum| client_candidates.binary_search_by_key(&num, |c| c.0).is_ok();
        let bitmap_counted = sel.used_bitmap();
        let reuse_against = |num: ObjNum| if bitmap_counted { client_has(num) } else { preferred(num) };
        let plan_opts = PlanOptions {
            verbatim: sel.verbatim,
            // Counted with bitmaps, git reuses the stored order; otherwise it writes each delta
            // after its base.
            delta_order: !bitmap_counted,
            thin: options.thin,
            reuse_against: &reuse_against,
            client_candidates: &client_candidates,
            name_hash: &name_hash,
            kind_of: &|num| sel.kind(num),
            window: repo.config.pack_window,
            depth: repo.config.pack_depth,
        };
        let mut plan = Plan::new(&sel.sent, packs, &repo.odb, &plan_opts).map_err(SessionError::internal)?;
        summary.counting += started.elapsed();
        let writing = std::time::Instant::now();
        let stats = {
            let mut on_entry = |_: &writer::PackStats| {};
            writer::write_pack(
                &mut sb,
                &mut plan,
                packs,
                &repo.odb,
                &writer::Known {
                    is_sent: &|num| sel.sent.get(num as usize),
                    client_has: &|num| sel.client.has(num),
                    thin_bases: &sel.thin_bases,
                    name_hash: &|num| sel.name_hash(num),
                },
                options,
                &mut on_entry,
            )
        };
        summary.writing += writing.elapsed();
        let stats = stats.map_err(|e| match e {
            writer::PackError::Io(io) => SessionError::Write(io),
            other => SessionError::internal(other),
        })?;
        Ok(stats)
    })();
    match result {
        Ok(stats) => {
            summary.objects += u64::from(stats.objects);
            summary.bytes += stats.bytes;
            sb.progress(&format!(
                "Total {} (delta {}), reused {} (delta {}), pack-reused {} (from {})\n",
                stats.objects,
                stats.deltas,
                stats.reused,
                stats.reused_deltas,
                stats.verbatim,
                u32::from(stats.verbatim > 0)
            ))?;
            sb.finish()?;
            Ok(())
        }
        Err(SessionError::Write(e)) => Err(SessionError::Write(e)),
        Err(e) => {
            let msg = format!("fatal: {e}");
            // The client may be gone already; the error is reported on stderr either way.
            let _ = sb.error(&msg);
            Err(SessionError::Reported(e.to_string()))
        }
    }
}

/// The `packfile-uris` section (one `<pack-hash> <uri>` line for each object left out of the
/// pack, when there are any) and the `packfile` header after it.
fn write_uri_sections<W: Write>(
    sb: &mut SideBand<'_, W>,
    uris: &[crate::config::BlobPackfileUri],
    excluded: &[ObjectId],
) -> Result<(), SessionError> {
    let w = sb.lines()?;
    if !excluded.is_empty() {
        w.line("packfile-uris")?;
        for e in uris.iter().filter(|e| excluded.contains(&e.object)) {
            w.line(format!("{} {}", e.pack_hash, e.uri))?;
        }
        w.delim_pkt()?;
    }
    w.line("packfile")?;
    Ok(())
}

/// The `shallow`/`deepen*` lines of a request, as sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeepenArgs {
    /// `shallow <oid>`.
    pub shallow: Vec<ObjectId>,
    /// `deepen <n>`.
    pub depth: u32,
    /// `deepen-since <t>`.
    pub since: Option<u64>,
    /// `deepen-not <ref>`.
    pub not: Vec<String>,
    /// `deepen-relative`.
    pub relative: bool,
    /// The `shallow` ids seen (duplicates are dropped with a set, not a scan of the list).
    pub shallow_seen: gix::hashtable::HashSet<ObjectId>,
}

impl DeepenArgs {
    /// Whether anything shallow-related was asked.
    pub fn any(&self) -> bool {
        !self.shallow.is_empty() || self.depth > 0 || self.since.is_some() || !self.not.is_empty()
    }
}

/// Parses a `shallow`/`deepen*` line into `args`; `Ok(false)` if the line is none of them.
/// Messages are git's.
pub(crate) fn parse_deepen_line(
    line: &[u8],
    hash: gix::hash::Kind,
    args: &mut DeepenArgs,
) -> Result<bool, SessionError> {
    let text = || String::from_utf8_lossy(line).into_owned();
    if let Some(hex) = line.strip_prefix(b"shallow ") {
        let id = parse_oid(hex, hash)
            .ok_or_else(|| SessionError::Protocol(format!("invalid shallow line: {}", text())))?;
        if args.shallow_seen.insert(id) {
            args.shallow.push(id);
        }
    } else if let Some(n) = line.strip_prefix(b"deepen ") {
        args.depth = parse_c_long(n)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|&d| d > 0 && d <= i32::MAX as u32)
            .ok_or_else(|| SessionError::Protocol(format!("Invalid deepen: {}", text())))?;
    } else if let Some(t) = line.strip_prefix(b"deepen-since ") {
        let since = parse_c_ulong(t)
            .filter(|&t| t != u64::MAX)
            .ok_or_else(|| SessionError::Protocol(format!("Invalid deepen-since: {}", text())))?;
        args.since = Some(since);
    } else if let Some(r) = line.strip_prefix(b"deepen-not ") {
        args.not.push(String::from_utf8_lossy(r).into_owned());
    } else if line == b"deepen-relative" {
        args.relative = true;
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// `strtol(s, &end, 0)` that must consume everything: decimal, `0x` hex or `0` octal, signed.
fn parse_c_long(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = parse_radix(digits)?;
    let v = i64::try_from(v).ok()?;
    Some(if neg { -v } else { v })
}

/// `strtoumax(s, &end, 0)` that must consume everything; a leading `-` wraps as in C.
fn parse_c_ulong(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    match s.strip_prefix('-') {
        Some(d) => parse_radix(d).map(|v| v.wrapping_neg()),
        None => parse_radix(s.strip_prefix('+').unwrap_or(s)),
    }
}

fn parse_radix(d: &str) -> Option<u64> {
    if d.is_empty() {
        return None;
    }
    if let Some(h) = d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if d.len() > 1 && d.starts_with('0') {
        u64::from_str_radix(&d[1..], 8).ok()
    } else {
        d.parse().ok()
    }
}

/// Resolves the request's shallow state: drops client shallow commits we don't have, refuses
/// ones that are not commits, resolves `deepen-not` names among the visible refs, and computes
/// the `shallow`/`unshallow` lines and the walk boundary.
pub(crate) fn prepare_shallow(
    repo: &Repo,
    refs: &Refs,
    wants: &[ObjectId],
    args: &DeepenArgs,
    v2: bool,
) -> Result<crate::select::shallow::ShallowInfo, SessionError> {
    use crate::select::shallow::{self, DeepenRequest};
    let odb = &repo.odb;
    let mut req =
        DeepenRequest { depth: args.depth, since: args.since, relative: args.relative, ..Default::default() };
    for s in &args.shallow {
        match odb.kind(s).map_err(SessionError::internal)? {
            None => {}
            Some(gix::objs::Kind::Commit) => req.client_shallow.push(*s),
            Some(_) => return Err(SessionError::Protocol(format!("invalid shallow object {}", s.to_hex()))),
        }
    }
    for name in &args.not {
        let id = dwim_ref(refs, name).ok_or_else(|| {
            SessionError::Protocol(format!("git upload-pack: ambiguous deepen-not: deepen-not {name}"))
        })?;
        req.not.push(id);
    }
    let tips = refs.advertised(odb).map(|r| r.map(|r| r.id.get())).collect::<Result<Vec<_>, _>>();
    let tips = tips.map_err(SessionError::internal)?;
    shallow::compute(odb, wants, &req, &tips, v2).map_err(|e| match e {
        shallow::ShallowError::Odb(e) => SessionError::internal(e),
        other => SessionError::Protocol(other.to_string()),
    })
}

/// The `shallow`/`unshallow` lines of a response (v0 after the wants, v2 in `shallow-info`).
/// git writes them without a trailing newline, and some clients (libgit2) insist.
pub(crate) fn write_shallow_lines<W: Write>(
    w: &mut PktWriter<W>,
    info: &crate::select::shallow::ShallowInfo,
) -> std::io::Result<()> {
    for s in &info.shallow {
        w.data(format!("shallow {}", s.to_hex()).as_bytes())?;
    }
    for s in &info.unshallow {
        w.data(format!("unshallow {}", s.to_hex()).as_bytes())?;
    }
    Ok(())
}

/// git's `expand_ref`: the one visible ref a short name means (`x`, `refs/x`, `refs/tags/x`,
/// `refs/heads/x`, `refs/remotes/x`, `refs/remotes/x/HEAD`); `None` when none or several match.
fn dwim_ref(refs: &Refs, name: &str) -> Option<ObjectId> {
    let candidates = [
        name.to_owned(),
        format!("refs/{name}"),
        format!("refs/tags/{name}"),
        format!("refs/heads/{name}"),
        format!("refs/remotes/{name}"),
        format!("refs/remotes/{name}/HEAD"),
    ];
    // Each candidate looked up by name (sorted stores), not every ref scanned per line.
    let mut found = None;
    let mut count = 0;
    for c in &candidates {
        if let Some(id) = refs.lookup(c.as_bytes()) {
            found.get_or_insert(id);
            count += 1;
        }
    }
    (count == 1).then_some(found).flatten()
}

/// Parses and checks a filter spec against `uploadpackfilter.*` (git's messages), resolving a
/// `sparse:oid=` blob among the visible `refs`. The blob must be one a v2 fetch could get
/// (git reads any object and resolves hidden refs here; packserve does not let a filter
/// probe what is hidden): otherwise it is as unknown as a missing one.
pub(crate) fn parse_filter(
    repo: &Repo,
    refs: &Refs,
    spec: Option<&str>,
) -> Result<Option<crate::select::filter::ObjectFilter>, SessionError> {
    use crate::select::filter::{Filter, FilterError, ObjectFilter, SparsePatterns};
    let Some(spec) = spec else { return Ok(None) };
    let filter = Filter::parse(spec).map_err(|e| SessionError::Protocol(e.to_string()))?;
    let fc = &repo.config.filter;
    // packserve.maxFilterDepth bounds tree:<depth> along with git's uploadpackfilter.tree.maxDepth.
    let max_depth = match (fc.tree_max_depth, repo.config.limits.max_filter_depth) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    filter.check(&|name| fc.allows(name), max_depth).map_err(|e| match e {
        // git tells these to the client too.
        FilterError::NotAllowed(_) | FilterError::TooDeep { .. } => SessionError::Refused(e.to_string()),
        other => SessionError::Protocol(other.to_string()),
    })?;
    let sparse = match filter.sparse_spec() {
        None => None,
        Some(expr) => {
            let bad = || SessionError::Protocol(format!("unable to access sparse blob in '{expr}'"));
            let id = resolve_blob_expr(repo, refs, expr)?.ok_or_else(bad)?;
            let rules = want_rules(repo, refs, true, true)?;
            if !refused_wants(repo, &[id], &rules)?.is_empty() {
                return Err(bad());
            }
            let mut buf = Vec::new();
            match repo.odb.read(&id, &mut buf) {
                Ok(gix::objs::Kind::Blob) => Some(SparsePatterns::parse(&buf)),
                _ => return Err(bad()),
            }
        }
    };
    Ok(Some(ObjectFilter { filter, sparse }))
}

/// A blob named by a hex id or `<rev>:<path>` (the forms a sparse filter uses), `<rev>`
/// resolved among the visible `refs` only.
fn resolve_blob_expr(repo: &Repo, refs: &Refs, expr: &str) -> Result<Option<ObjectId>, SessionError> {
    let hash = repo.odb.hash_kind();
    if let Some(id) = parse_oid(expr.as_bytes(), hash) {
        return Ok(Some(id));
    }
    let Some((rev, path)) = expr.split_once(':') else { return Ok(None) };
    let start = if rev.is_empty() {
        refs.find(&repo.odb, b"HEAD").map_err(SessionError::internal)?
    } else {
        dwim_ref(refs, rev).or_else(|| parse_oid(rev.as_bytes(), hash))
    };
    Ok(start.and_then(|start| blob_at_path(repo, &start, path)))
}

/// The object at `path` in the tree of the commit `start` peels to.
fn blob_at_path(repo: &Repo, start: &ObjectId, path: &str) -> Option<ObjectId> {
    let (commit, _) = repo.odb.peel(start).ok()?;
    let mut cur = repo.odb.commit(&commit).ok()?.tree;
    let mut buf = Vec::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let mut next = None;
        repo.odb
            .for_each_tree_entry(&cur, &mut buf, |_, name, id| {
                if name == comp.as_bytes() {
                    next = Some(id.to_owned());
                }
            })
            .ok()?;
        cur = next?;
    }
    Some(cur)
}

/// Trees a want check may read, without a bitmap, before it builds the reachable-set cache
/// (when `packserve.cache.dir` is set): a want this deep in history is likely followed by
/// more (a partial clone's lazy fetches), and the set answers them all with lookups.
const REACH_TREE_BUDGET: u64 = 2_000;

/// The wants (in order) that `rules` refuse. Reachability is answered, cheapest first, by the
/// reachability bitmap; by the reachable-set cache of the current tips when
/// `packserve.cache.dir` is set and has one; by a walk that stops when every want is found.
/// With the cache configured, a walk that reads more than [`REACH_TREE_BUDGET`] trees gives up
/// and the whole set is built once, stored, and used.
pub(crate) fn refused_wants(
    repo: &Repo,
    wants: &[ObjectId],
    rules: &WantRules,
) -> Result<Vec<ObjectId>, SessionError> {
    use crate::host::reach::ReachCache;
    use crate::select::policy::{self, Outcome, Reach};
    let odb = &repo.odb;
    let index = reach_index(repo);
    let cache = repo.config.cache.dir.as_deref().filter(|_| index.is_none() && rules.reachable && !rules.any);
    let Some(dir) = cache else {
        let reach = Reach { index: index.as_ref(), ..Default::default() };
        return Ok(policy::disallowed(odb, reach, wants, rules).map_err(SessionError::internal)?.refused());
    };
    let cache = ReachCache::new(dir);
    let key = ReachCache::key(repo.common_dir(), odb.shallow(), &rules.reach_from);
    if let Some(set) = cache.load(&key) {
        let known = |id: &gix::hash::oid| set.contains(id);
        let reach = Reach { known: Some(&known), ..Default::default() };
        return Ok(policy::disallowed(odb, reach, wants, rules).map_err(SessionError::internal)?.refused());
    }
    let reach = Reach { tree_budget: Some(REACH_TREE_BUDGET), ..Default::default() };
    match policy::disallowed(odb, reach, wants, rules).map_err(SessionError::internal)? {
        Outcome::Refused(r) => Ok(r),
        Outcome::OverBudget => {
            let mut ids = policy::reachable_ids(odb, &rules.reach_from).map_err(SessionError::internal)?;
            ids.sort_unstable();
            if let Err(e) = cache.store(&key, &ids) {
                eprintln!(
                    "packserve: warning: cannot write the reachable-set cache in {}: {e}",
                    dir.display()
                );
            }
            let known = |id: &gix::hash::oid| ids.binary_search_by(|x| x.as_ref().cmp(id)).is_ok();
            let reach = Reach { known: Some(&known), ..Default::default() };
            Ok(policy::disallowed(odb, reach, wants, rules).map_err(SessionError::internal)?.refused())
        }
    }
}

/// The reachability bitmap that answers whether the tips reach a want, if the repository has
/// one that may be used. Hidden refs do not matter here: the tips are named explicitly, and a
/// commit's stored bitmap is what that commit reaches. Not in a shallow repository.
pub(crate) fn reach_index(repo: &Repo) -> Option<bitmap::BitmapIndex<'_>> {
    let conditions =
        bitmap::Conditions { shallow: !repo.odb.shallow().is_empty(), ..bitmap_conditions(repo) };
    let packs = repo.packs().ok()?;
    bitmap::open_if_eligible(packs, &repo.common_dir().join("objects/pack"), conditions)
}

/// What the repository's configuration says about bitmaps: `pack.useBitmaps`. (Hidden refs
/// need no special care: the wants were checked, and counting from them reaches nothing else.)
fn bitmap_conditions(repo: &Repo) -> bitmap::Conditions {
    bitmap::Conditions { disabled: !repo.config.use_bitmaps, ..Default::default() }
}

/// Parses a hex object id from a protocol line argument.
pub(crate) fn parse_oid(hex: &[u8], kind: gix::hash::Kind) -> Option<ObjectId> {
    if hex.len() != kind.len_in_hex() {
        return None;
    }
    ObjectId::from_hex(hex).ok()
}
