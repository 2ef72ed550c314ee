//! Protocol v2: the capability advertisement, then commands (`ls-refs`, `fetch`) until the
//! client flushes or hangs up. `fetch` is git's little state machine: process the arguments,
//! send acknowledgments, send the pack, done.

use std::io::{Read, Write};

use gix::bstr::{BString, ByteSlice};
use gix::hash::ObjectId;

use super::caps;
use super::v0::hash_name;
use super::{
    parse_deepen_line, parse_oid, send_pack, DeepenArgs, PackRequest, SessionError, Settings, Summary,
};
use crate::config::ReadAt;
use crate::negotiate::{Have, Negotiator};
use crate::pack::writer::PackOptions;
use crate::refs::Refs;
use crate::repo::Repo;
use crate::wire::pktline::{Packet, PktReader, PktWriter};
use crate::wire::sideband::Framing;

/// A parsed command request: the command, its capability lines, its arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `ls-refs`, `fetch`, ...
    pub command: String,
    /// `object-format=` from the client, if sent.
    pub object_format: Option<String>,
    /// Whether a delimiter followed the capability lines: argument lines are still to be
    /// read, as they arrive, through [`Args`].
    pub has_args: bool,
    /// `agent=` from the client, if sent.
    pub agent: Option<String>,
    /// `session-id=` from the client, if sent (and accepted).
    pub session_id: Option<String>,
}

/// The argument lines of one command, read one at a time as they arrive: a command parses each
/// line when it comes, so a bad line ends the request at once and what is kept is what the
/// request means, never the request's bytes.
pub struct Args<'a, R> {
    r: &'a mut PktReader<R>,
    command: &'a str,
    ended: bool,
}

impl<'a, R: Read> Args<'a, R> {
    /// The arguments of `req`, next on `r`.
    pub fn new(r: &'a mut PktReader<R>, req: &'a Request) -> Self {
        Args { r, command: &req.command, ended: !req.has_args }
    }

    /// Calls `f` with each line (newline stripped) until the flush that ends the arguments, or
    /// until `f` answers `false` (the rest is left unread: the request ends with an error).
    pub fn each(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<bool, SessionError>,
    ) -> Result<(), SessionError> {
        while !self.ended {
            match self.r.read_required()? {
                Packet::Flush => self.ended = true,
                pkt @ Packet::Data(_) => {
                    if !f(pkt.line().unwrap_or_default())? {
                        return Ok(());
                    }
                }
                _ => {
                    return Err(SessionError::Protocol(format!(
                        "expected flush after {} arguments",
                        self.command
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads the remaining lines, keeping none of them.
    pub fn skip_rest(&mut self) -> Result<(), SessionError> {
        self.each(|_| Ok(true))
    }
}

/// Which advertised-only parts of a request are accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestAccepts<'a> {
    /// `session-id=` (`transfer.advertiseSID`).
    pub session_id: bool,
    /// `command=object-info` (`transfer.advertiseObjectInfo`).
    pub object_info: bool,
    /// The configuration whose malformed values end the request where git reads them: a
    /// command's keys when the command is named, `transfer.advertiseSID` at `session-id=`.
    pub config: Option<&'a crate::config::ServeConfig>,
    /// `command=bundle-uri` (`uploadpack.advertiseBundleURIs`).
    pub bundle_uri: bool,
}

impl RequestAccepts<'_> {
    /// git reads the configuration of what a request line names as it reads the line.
    fn check(&self, at: &[ReadAt]) -> Result<(), SessionError> {
        match self.config {
            Some(c) => Ok(c.check(at)?),
            None => Ok(()),
        }
    }
}

/// Reads one request; `Ok(None)` when the client ends the session: a flush first, or the end of
/// input anywhere before the first packet is complete (git's serve loop reads that packet
/// gently, so trailing bytes after a complete request end the session quietly).
pub fn read_request<R: Read>(
    r: &mut PktReader<R>,
    accept: RequestAccepts<'_>,
) -> Result<Option<Request>, SessionError> {
    let mut req = Request::default();
    let mut seen_any = false;
    r.start_request();
    if r.peek_gentle()?.is_none() {
        return Ok(None);
    }
    let mut command: Option<String> = None;
    loop {
        let pkt = match r.read()? {
            None if !seen_any => return Ok(None),
            None => return Err(SessionError::Read(crate::wire::pktline::ReadError::UnexpectedEof)),
            Some(p) => p,
        };
        match pkt {
            Packet::Flush if !seen_any => return Ok(None),
            Packet::Flush => {
                // No arguments: the flush ends the request.
                req.command = command.ok_or_else(|| SessionError::Protocol("no command requested".into()))?;
                return Ok(Some(req));
            }
            Packet::Delim => break,
            Packet::ResponseEnd => {
                return Err(SessionError::Protocol("unexpected response-end packet".into()))
            }
            Packet::Data(_) => {
                let line = pkt.line().unwrap_or_default().to_vec();
                seen_any = true;
                if let Some(c) = line.strip_prefix(b"command=") {
                    if let Some(first) = &command {
                        return Err(SessionError::Protocol(format!(
                            "command '{}' requested after already requesting command '{first}'",
                            String::from_utf8_lossy(c)
                        )));
                    }
                    let c = String::from_utf8_lossy(c).into_owned();
                    match c.as_str() {
                        "fetch" => accept.check(ReadAt::UPLOAD_PACK)?,
                        "object-info" => accept.check(&[ReadAt::ObjectInfo])?,
                        _ => {}
                    }
                    let optional = (c == "object-info" && accept.object_info)
                        || (c == "bundle-uri" && accept.bundle_uri);
                    if c != "ls-refs" && c != "fetch" && !optional {
                        return Err(SessionError::Protocol(format!("invalid command '{c}'")));
                    }
                    command = Some(c);
                } else if let Some(f) = line.strip_prefix(b"object-format=") {
                    req.object_format = Some(String::from_utf8_lossy(f).into_owned());
                } else if line.starts_with(b"agent=")
                    || line.starts_with(b"server-option=")
                    || (line.starts_with(b"session-id=") && {
                        accept.check(&[ReadAt::SessionId])?;
                        accept.session_id
                    })
                {
                    // Accepted; the agent and session id are kept for the log and trace2.
                    let text = |v: &[u8]| Some(String::from_utf8_lossy(v).into_owned());
                    if let Some(a) = line.strip_prefix(b"agent=") {
                        req.agent = text(a);
                    } else if let Some(sid) = line.strip_prefix(b"session-id=") {
                        req.session_id = text(sid);
                    }
                } else {
                    return Err(SessionError::Protocol(format!(
                        "unknown capability '{}'",
                        String::from_utf8_lossy(&line)
                    )));
                }
            }
        }
    }
    req.command = command.ok_or_else(|| SessionError::Protocol("no command requested".into()))?;
    req.has_args = true;
    Ok(Some(req))
}

/// Writes the capability advertisement with its flush. As git, it reads each capability's
/// configuration as it comes to it, so a malformed value ends the advertisement there
/// (`lsrefs.unborn` before `ls-refs`, upload-pack's keys before `fetch`,
/// `transfer.advertiseObjectInfo` last).
pub fn advertise<W: Write>(
    w: &mut PktWriter<W>,
    adv: &caps::Advertise,
    config: &crate::config::ServeConfig,
) -> Result<(), SessionError> {
    for line in caps::v2_capabilities(adv) {
        if line.starts_with("ls-refs") {
            config.check(&[ReadAt::Unborn])?;
        } else if line.starts_with("fetch=") {
            config.check(ReadAt::UPLOAD_PACK)?;
        } else if line == "object-info" {
            config.check(&[ReadAt::ObjectInfo])?;
        }
        w.line(line)?;
    }
    config.check(&[ReadAt::ObjectInfo])?;
    w.flush_pkt()?;
    Ok(w.flush()?)
}

/// Serves a v2 connection (or one stateless request).
pub fn serve<R: Read, W: Write>(
    repo: &Repo,
    r: &mut PktReader<R>,
    w: &mut PktWriter<W>,
    settings: &Settings,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let hash = repo.odb.hash_kind();
    let adv = advertised_v2(repo, settings);
    if settings.advertise_refs || !settings.stateless_rpc {
        advertise(w, &adv, &repo.config)?;
        summary.commands.push("advertise");
    }
    if settings.advertise_refs {
        return Ok(());
    }
    loop {
        let accept = RequestAccepts {
            session_id: repo.config.advertise_sid,
            object_info: repo.config.advertise_object_info,
            config: Some(&repo.config),
            bundle_uri: adv.bundle_uri,
        };
        let Some(req) = read_request(r, accept)? else {
            return Ok(());
        };
        if let Some(sid) = &req.session_id {
            crate::trace2::data("transfer", "client-sid", sid);
            summary.client_sid = Some(sid.clone());
        }
        if req.agent.is_some() {
            summary.client_agent = req.agent.clone();
        }
        // A client that names no object format speaks sha1.
        let client_format = req.object_format.as_deref().unwrap_or("sha1");
        if client_format != hash_name(hash) {
            return Err(SessionError::Protocol(format!(
                "mismatched object format: server {}; client {client_format}",
                hash_name(hash)
            )));
        }
        match req.command.as_str() {
            "ls-refs" => {
                summary.commands.push("ls-refs");
                ls_refs(repo, w, settings, &mut Args::new(r, &req))?
            }
            "fetch" => {
                summary.commands.push("fetch");
                let refs = super::read_refs(repo, settings, None)?;
                fetch(repo, w, &refs, &mut Args::new(r, &req), summary)?
            }
            "bundle-uri" if adv.bundle_uri => {
                summary.commands.push("bundle-uri");
                bundle_uri(repo, w, &mut Args::new(r, &req))?
            }
            "object-info" if repo.config.advertise_object_info => {
                summary.commands.push("object-info");
                let refs = super::read_refs(repo, settings, None)?;
                object_info(repo, w, &refs, &mut Args::new(r, &req))?
            }
            other => return Err(SessionError::Protocol(format!("invalid command '{other}'"))),
        }
        w.flush()?;
        if settings.stateless_rpc {
            return Ok(());
        }
    }
}

/// The v2 advertisement: v0's decisions plus the v2-only commands. `bundle-uri` is not offered
/// inside a `GIT_NAMESPACE`: the `bundle.*` list is the whole repository's, and its bundles
/// would carry the other namespaces' refs and objects.
fn advertised_v2(repo: &Repo, settings: &Settings) -> caps::Advertise {
    let c = &repo.config;
    caps::Advertise {
        bundle_uri: c.advertise_bundle_uris && settings.namespace.is_none(),
        packfile_uris: !c.blob_packfile_uris.is_empty(),
        ..super::advertised(repo, settings, false)
    }
}

/// `bundle-uri`: every `bundle.*` key of the configuration as a `key=value` line, in
/// configuration order, as git's upload-pack answers (no arguments are accepted).
fn bundle_uri<R: Read, W: Write>(
    repo: &Repo,
    w: &mut PktWriter<W>,
    args: &mut Args<'_, R>,
) -> Result<(), SessionError> {
    args.each(|arg| {
        Err(SessionError::Protocol(format!("bundle-uri: unexpected argument: '{}'", arg.as_bstr())))
    })?;
    for (key, value) in &repo.config.bundle_list {
        w.data(format!("{key}={value}").as_bytes())?;
    }
    w.flush_pkt()?;
    Ok(())
}

/// `object-info`: the sizes of objects a client could fetch (others are reported as unknown,
/// so nothing hidden leaks through sizes). Lines and errors are byte for byte git's: no
/// trailing newlines, and a bad argument is an `ERR` line ending the response, not the session.
fn object_info<R: Read, W: Write>(
    repo: &Repo,
    w: &mut PktWriter<W>,
    refs: &Refs,
    args: &mut Args<'_, R>,
) -> Result<(), SessionError> {
    let hash = repo.odb.hash_kind();
    let mut size = false;
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut unexpected: Option<String> = None;
    // The whole request is read (the session goes on after an ERR), keeping nothing after the
    // first unexpected line.
    args.each(|arg| {
        if unexpected.is_some() {
            return Ok(true);
        }
        if arg == b"size" {
            size = true;
        } else if let Some(hex) = arg.strip_prefix(b"oid ") {
            ids.push(hex.to_vec());
        } else {
            unexpected = Some(format!("ERR object-info: unexpected line: '{}'", arg.as_bstr()));
        }
        Ok(true)
    })?;
    if let Some(msg) = unexpected {
        w.data(msg.as_bytes())?;
        w.flush_pkt()?;
        return Ok(());
    }
    if size {
        w.data(b"size")?;
    }
    // The ids up to the first that is not one (git answers those, then the error).
    let mut parsed = Vec::with_capacity(ids.len());
    for hex in &ids {
        match parse_oid(hex, hash) {
            Some(id) => parsed.push(id),
            None => break,
        }
    }
    // Whether each is allowed, answered for all of them at once.
    let refused: gix::hashtable::HashSet<ObjectId> = if size {
        let rules = super::want_rules(repo, refs, true, true)?;
        super::refused_wants(repo, &parsed, &rules)?.into_iter().collect()
    } else {
        Default::default()
    };
    for id in &parsed {
        if !size {
            w.data(id.to_hex().to_string().as_bytes())?;
            continue;
        }
        let allowed = !refused.contains(id);
        let sz = if allowed { repo.odb.size(id).map_err(SessionError::internal)? } else { None };
        let line = match sz {
            Some(sz) => format!("{} {sz}", id.to_hex()),
            None => format!("{} ", id.to_hex()),
        };
        w.data(line.as_bytes())?;
    }
    if let Some(hex) = ids.get(parsed.len()) {
        let msg = format!(
            "ERR object-info: protocol error, expected to get oid, not '{}'",
            hex.as_slice().as_bstr()
        );
        w.data(msg.as_bytes())?;
        w.flush_pkt()?;
        return Ok(());
    }
    w.flush_pkt()?;
    Ok(())
}

/// Options of `ls-refs`.
#[derive(Debug, Default)]
struct LsRefsArgs {
    peel: bool,
    symrefs: bool,
    unborn: bool,
    prefixes: Vec<BString>,
}

/// git ignores `ref-prefix` lines when a client sends this many or more (a client listing that
/// many prefixes gets every ref, as it would have without any).
const TOO_MANY_PREFIXES: usize = 65536;

/// `ls-refs`: one line per ref matching the prefixes, HEAD first. `unborn` is answered as
/// `lsrefs.unborn` says (`ignore`: the argument is accepted and does nothing). Only the refs
/// under the prefixes are read, and objects are looked at only for `peel`.
pub fn ls_refs<R: Read, W: Write>(
    repo: &Repo,
    w: &mut PktWriter<W>,
    settings: &super::Settings,
    args: &mut Args<'_, R>,
) -> Result<(), SessionError> {
    let config = &repo.config;
    // git's ls-refs reads the hideRefs keys first, lsrefs.unborn when asked for `unborn`.
    config.check(&[ReadAt::HideRefs])?;
    let mut a = LsRefsArgs::default();
    args.each(|arg| {
        match arg {
            b"peel" => a.peel = true,
            b"symrefs" => a.symrefs = true,
            b"unborn" => {
                config.check(&[ReadAt::Unborn])?;
                a.unborn = config.unborn != crate::config::Unborn::Ignore;
            }
            other => match other.strip_prefix(b"ref-prefix ") {
                Some(p) if a.prefixes.len() < TOO_MANY_PREFIXES => a.prefixes.push(p.into()),
                Some(_) => {}
                None => return Err(SessionError::Protocol(format!("unexpected line: '{}'", arg.as_bstr()))),
            },
        }
        Ok(true)
    })?;
    if a.prefixes.len() >= TOO_MANY_PREFIXES {
        a.prefixes.clear();
    }
    let refs = super::read_refs(repo, settings, Some(&a.prefixes))?;
    let matches = |name: &[u8]| a.prefixes.is_empty() || a.prefixes.iter().any(|p| name.starts_with(p));
    let mut line = Vec::with_capacity(256);
    // git's send_possibly_unborn_head: HEAD when it leads to an object, else (asked for) the
    // branch it would be on.
    if !refs.head_hidden() && matches(b"HEAD") {
        match refs.head() {
            Some((id, target)) if !id.is_null() => {
                crate::refs::packed::push_hex(&id, &mut line);
                line.extend_from_slice(b" HEAD");
                if a.symrefs {
                    if let Some(t) = target {
                        line.extend_from_slice(b" symref-target:");
                        line.extend_from_slice(refs.strip(t));
                    }
                }
                if a.peel {
                    if let Some(p) = refs.head_peeled(&repo.odb) {
                        line.extend_from_slice(b" peeled:");
                        crate::refs::packed::push_hex(&p, &mut line);
                    }
                }
                line.push(b'\n');
                w.data(&line)?;
            }
            _ => {
                if let Some(target) = refs.unborn_head().filter(|_| a.unborn && a.symrefs) {
                    line.extend_from_slice(b"unborn HEAD symref-target:");
                    line.extend_from_slice(refs.strip(target));
                    line.push(b'\n');
                    w.data(&line)?;
                }
            }
        }
    }
    for e in refs.entries() {
        let e = e.map_err(SessionError::internal)?;
        if e.hidden {
            continue;
        }
        line.clear();
        e.id.push_hex(&mut line);
        line.push(b' ');
        line.extend_from_slice(e.name);
        if a.symrefs {
            if let Some(t) = e.symref_target {
                line.extend_from_slice(b" symref-target:");
                line.extend_from_slice(refs.strip(t));
            }
        }
        if a.peel {
            if let Some(p) = refs.peeled(&repo.odb, &e) {
                line.extend_from_slice(b" peeled:");
                p.push_hex(&mut line);
            }
        }
        line.push(b'\n');
        w.data(&line)?;
    }
    w.flush_pkt()?;
    Ok(())
}

/// Arguments of `fetch`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FetchArgs {
    /// `want` ids.
    pub wants: Vec<ObjectId>,
    /// `want-ref` names.
    pub want_refs: Vec<BString>,
    /// `have` ids.
    pub haves: Vec<ObjectId>,
    /// `done`.
    pub done: bool,
    /// `wait-for-done`.
    pub wait_for_done: bool,
    /// `thin-pack`.
    pub thin_pack: bool,
    /// `ofs-delta`.
    pub ofs_delta: bool,
    /// `no-progress`.
    pub no_progress: bool,
    /// `include-tag`.
    pub include_tag: bool,
    /// `sideband-all`.
    pub sideband_all: bool,
    /// `shallow`/`deepen*`.
    pub deepen: DeepenArgs,
    /// `filter <spec>`.
    pub filter: Option<String>,
    /// `packfile-uris <protocol>,...`.
    pub packfile_uris: Vec<String>,
}

/// Which optional arguments this server accepts (the rest is "unexpected line").
#[derive(Debug, Clone, Copy, Default)]
pub struct Accepts {
    /// `filter`.
    pub filter: bool,
    /// `want-ref`.
    pub want_ref: bool,
    /// `sideband-all`.
    pub sideband_all: bool,
    /// `packfile-uris`.
    pub packfile_uris: bool,
}

/// Parses `fetch` arguments with git's error messages.
pub fn parse_fetch_args(
    args: &[BString],
    hash: gix::hash::Kind,
    accepts: Accepts,
) -> Result<FetchArgs, SessionError> {
    let mut p = FetchParser::new(hash, accepts);
    for arg in args {
        p.line(arg.as_bytes())?;
    }
    Ok(p.args)
}

/// Parses `fetch` arguments one line at a time, as they arrive.
pub struct FetchParser {
    hash: gix::hash::Kind,
    accepts: Accepts,
    /// The `want` ids seen (duplicates dropped with a set).
    seen: gix::hashtable::HashSet<ObjectId>,
    /// What the lines said so far.
    pub args: FetchArgs,
}

impl FetchParser {
    /// A parser for a server with `accepts`, in a repository of `hash`.
    pub fn new(hash: gix::hash::Kind, accepts: Accepts) -> Self {
        FetchParser { hash, accepts, seen: Default::default(), args: FetchArgs::default() }
    }

    /// Takes one argument line; a bad one is an error with git's message.
    pub fn line(&mut self, arg: &[u8]) -> Result<(), SessionError> {
        let (hash, accepts, f, seen) = (self.hash, self.accepts, &mut self.args, &mut self.seen);
        if let Some(hex) = arg.strip_prefix(b"want ") {
            let id = parse_oid(hex, hash).ok_or_else(|| {
                SessionError::Protocol(format!(
                    "git upload-pack: protocol error, expected to get oid, not '{}'",
                    arg.as_bstr()
                ))
            })?;
            if seen.insert(id) {
                f.wants.push(id);
            }
            return Ok(());
        }
        if let Some(name) = arg.strip_prefix(b"want-ref ").filter(|_| accepts.want_ref) {
            f.want_refs.push(name.into());
            return Ok(());
        }
        if let Some(hex) = arg.strip_prefix(b"have ") {
            let id = parse_oid(hex, hash).ok_or_else(|| {
                SessionError::Protocol(format!(
                    "git upload-pack: expected SHA1 object, got '{}'",
                    hex.as_bstr()
                ))
            })?;
            f.haves.push(id);
            return Ok(());
        }
        if parse_deepen_line(arg, hash, &mut f.deepen)? {
            return Ok(());
        }
        if let Some(spec) = arg.strip_prefix(b"filter ").filter(|_| accepts.filter) {
            if f.filter.is_some() {
                return Err(SessionError::Protocol("multiple filter-specs cannot be combined".into()));
            }
            f.filter = Some(String::from_utf8_lossy(spec).into_owned());
            return Ok(());
        }
        if let Some(list) = arg.strip_prefix(b"packfile-uris ").filter(|_| accepts.packfile_uris) {
            if !f.packfile_uris.is_empty() {
                return Err(SessionError::Refused("multiple packfile-uris lines forbidden".into()));
            }
            f.packfile_uris =
                list.split(|&b| b == b',').map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            return Ok(());
        }
        match arg {
            b"thin-pack" => f.thin_pack = true,
            b"ofs-delta" => f.ofs_delta = true,
            b"no-progress" => f.no_progress = true,
            b"include-tag" => f.include_tag = true,
            b"done" => f.done = true,
            b"wait-for-done" => f.wait_for_done = true,
            b"sideband-all" if accepts.sideband_all => f.sideband_all = true,
            _ => return Err(SessionError::Protocol(format!("unexpected line: '{}'", arg.as_bstr()))),
        }
        Ok(())
    }
}

/// `fetch`: process the arguments, send acknowledgments, then (when ready or done) the
/// wanted-refs, shallow-info and packfile sections.
fn fetch<R: Read, W: Write>(
    repo: &Repo,
    w: &mut PktWriter<W>,
    refs: &Refs,
    lines: &mut Args<'_, R>,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let odb = &repo.odb;
    let c = &repo.config;
    let accepts = Accepts {
        filter: c.allow_filter,
        want_ref: c.allow_ref_in_want,
        sideband_all: c.allow_sideband_all,
        packfile_uris: !c.blob_packfile_uris.is_empty(),
    };
    // Each line parsed as it arrives; reading stops at the first bad one, and as soon as the
    // request is over a limit (check_limits below says which).
    let mut parser = FetchParser::new(odb.hash_kind(), accepts);
    let limits = &c.limits;
    lines.each(|line| {
        parser.line(line)?;
        let a = &parser.args;
        Ok((a.wants.len() + a.want_refs.len()) as u64 <= limits.max_wants
            && a.haves.len() as u64 <= limits.max_haves)
    })?;
    let mut args = parser.args;
    if !args.wants.is_empty() || !args.want_refs.is_empty() {
        // git parses each wanted object as it reads the request.
        c.check(&[ReadAt::Objects])?;
    }
    crate::trace2::fetch_info(&crate::trace2::FetchInfo {
        haves: args.haves.len(),
        wants: args.wants.len(),
        want_refs: args.want_refs.len(),
        depth: args.deepen.depth,
        shallows: args.deepen.shallow.len(),
        deepen_since: args.deepen.since.is_some(),
        deepen_not: args.deepen.not.len(),
        deepen_relative: args.deepen.relative,
        filter: args.filter.clone(),
    });
    summary.wants += args.wants.len() + args.want_refs.len();
    summary.haves += args.haves.len();
    summary.shallow |= args.deepen.any();
    super::check_limits(&c.limits, args.wants.len() + args.want_refs.len(), args.haves.len(), &args.deepen)?;
    if args.filter.is_some() {
        summary.filter = args.filter.clone();
    }
    if args.sideband_all {
        w.set_sideband_all(true);
    }
    // want-ref: only visible refs, by their full (namespace-stripped) name.
    let mut wanted_refs = Vec::new();
    let mut wanted: gix::hashtable::HashSet<ObjectId> = args.wants.iter().copied().collect();
    for name in &args.want_refs {
        match refs.find(odb, name).map_err(SessionError::internal)? {
            Some(id) => {
                wanted_refs.push((id, name.clone()));
                if wanted.insert(id) {
                    args.wants.push(id);
                }
            }
            None => {
                let msg = format!("unknown ref {name}");
                w.error(&msg)?;
                w.flush()?;
                return Err(SessionError::Reported(msg));
            }
        }
    }
    if args.wants.is_empty() && !args.wait_for_done {
        return Ok(());
    }
    super::check_wants(repo, w, &args.wants, &super::want_rules(repo, refs, true, true)?)?;
    let filter = super::parse_filter(repo, refs, args.filter.as_deref())?;
    let mut neg = Negotiator::new();
    if !args.haves.is_empty() {
        // process_haves_and_send_acks
        let mut acks = Vec::new();
        for h in &args.haves {
            // git's process_haves acknowledges a commit only when no earlier have implied it.
            if neg.have(odb, h).map_err(SessionError::internal)? == (Have::Common { known: false }) {
                acks.push(*h);
            }
        }
        if !args.done {
            w.line("acknowledgments")?;
            if acks.is_empty() {
                w.line("NAK")?;
            }
            for a in &acks {
                w.line(format!("ACK {}", a.to_hex()))?;
            }
            let ready = !args.wait_for_done
                && !args.wants.is_empty()
                && neg.ok_to_give_up(odb, &args.wants).map_err(SessionError::internal)?;
            if ready {
                w.line("ready")?;
                w.delim_pkt()?;
            } else {
                w.flush_pkt()?;
                return Ok(());
            }
        }
    }
    if args.wants.is_empty() {
        w.flush_pkt()?;
        return Ok(());
    }
    if !wanted_refs.is_empty() {
        w.line("wanted-refs")?;
        for (id, name) in &wanted_refs {
            w.line(format!("{} {name}", id.to_hex()))?;
        }
        w.delim_pkt()?;
    }
    // shallow-info: whenever the request is shallow or this repository is.
    let shallow = if args.deepen.any() || !odb.shallow().is_empty() {
        let info = super::prepare_shallow(repo, refs, &args.wants, &args.deepen, true)?;
        w.line("shallow-info")?;
        super::write_shallow_lines(w, &info)?;
        w.delim_pkt()?;
        info
    } else {
        Default::default()
    };
    for p in &shallow.extra_wants {
        if wanted.insert(*p) {
            args.wants.push(*p);
        }
    }
    let mut common = neg.common().to_vec();
    common.extend(shallow.extra_common.iter().copied());
    // packfile-uris: the configured objects whose URI is of a protocol the client takes. The
    // section and the `packfile` header follow once the pack's objects are known.
    let mut uris = Vec::new();
    if !args.packfile_uris.is_empty() {
        let all = crate::config::BlobPackfileUri::parse_all(&c.blob_packfile_uris, odb.hash_kind())
            .map_err(SessionError::Refused)?;
        uris = all.into_iter().filter(|e| e.offered_for(&args.packfile_uris)).collect();
    }
    if uris.is_empty() {
        w.line("packfile")?;
    }
    send_pack(
        repo,
        w,
        PackRequest {
            wants: &args.wants,
            shallow: shallow.boundary,
            common: &common,
            filter,
            include_tags: super::included_tags(repo, refs, args.include_tag)?,
            framing: Framing::SideBand64k,
            progress: !args.no_progress,
            options: PackOptions { ofs_delta: args.ofs_delta, thin: args.thin_pack },
            uris: (!uris.is_empty()).then_some(uris.as_slice()),
            busy_as_err: true,
        },
        summary,
    )?;
    w.flush_pkt()?;
    Ok(())
}
