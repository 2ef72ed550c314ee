//! Protocol v0 and v1: the ref advertisement, the want lines with their capabilities, the
//! have/ACK exchange (`multi_ack`, `multi_ack_detailed`, `no-done`), then the pack.
//! Step names follow git's upload-pack: advertise, receive_needs, get_common_commits, send pack.

use std::io::{Read, Write};

use gix::hash::ObjectId;

use super::caps::{self, ClientCaps};
use super::{
    parse_deepen_line, parse_oid, send_pack, DeepenArgs, PackRequest, SessionError, Settings, Summary,
    Version,
};
use crate::config::ReadAt;
use crate::negotiate::{Have, Negotiator};
use crate::odb::Odb;
use crate::pack::writer::PackOptions;
use crate::refs::Refs;
use crate::repo::Repo;
use crate::wire::pktline::{Packet, PktReader, PktWriter};
use crate::wire::sideband::Framing;

/// Writes the v0 ref advertisement (without the final flush): HEAD, then the visible refs in
/// order, each annotated tag followed by its peeled value, the capabilities on the first line.
pub fn advertise<W: Write>(
    w: &mut PktWriter<W>,
    odb: &Odb,
    refs: &Refs,
    adv: &caps::Advertise,
    hash: gix::hash::Kind,
) -> Result<(), SessionError> {
    // git tells where HEAD points even when HEAD itself is hidden.
    let symref = refs.head().and_then(|(_, target)| target).map(|t| refs.strip(t));
    let capabilities = caps::v0_capabilities(adv, symref);
    let mut first = true;
    let mut line = Vec::with_capacity(256);
    for r in refs.advertised(odb) {
        let r = r.map_err(SessionError::internal)?;
        line.clear();
        r.id.push_hex(&mut line);
        line.push(b' ');
        line.extend_from_slice(r.name);
        if first {
            line.push(0);
            line.extend_from_slice(&capabilities);
            first = false;
        }
        line.push(b'\n');
        w.data(&line)?;
        if let Some(p) = r.peeled {
            line.clear();
            p.push_hex(&mut line);
            line.push(b' ');
            line.extend_from_slice(r.name);
            line.extend_from_slice(b"^{}\n");
            w.data(&line)?;
        }
    }
    if first {
        let mut line = Vec::new();
        line.extend_from_slice(ObjectId::null(hash).to_hex().to_string().as_bytes());
        line.extend_from_slice(b" capabilities^{}\0");
        line.extend_from_slice(&capabilities);
        line.push(b'\n');
        w.data(&line)?;
    }
    Ok(())
}

/// `sha1` or `sha256`.
pub fn hash_name(hash: gix::hash::Kind) -> &'static str {
    match hash {
        gix::hash::Kind::Sha1 => "sha1",
        _ => "sha256",
    }
}

/// What the client asked for before its first flush.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Wanted ids, without duplicates, in order.
    pub wants: Vec<ObjectId>,
    /// Capabilities from the want lines.
    pub caps: ClientCaps,
    /// `shallow`/`deepen*` lines.
    pub deepen: DeepenArgs,
    /// `filter <spec>`.
    pub filter: Option<String>,
    /// The client's `agent=` capability, if sent.
    pub agent: Option<String>,
    /// The client's `session-id=` capability, if sent.
    pub session_id: Option<String>,
}

/// The value of capability `name` (`name=value`) in a want line's feature list.
fn feature_value(features: &[u8], name: &[u8]) -> Option<String> {
    features.split(|&b| b == b' ').find_map(|cap| {
        let v = cap.strip_prefix(name)?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(v).into_owned())
    })
}

/// git's `receive_needs`: want, shallow, deepen* and filter lines up to the flush.
/// `Ok(None)` when the client wants nothing.
pub fn receive_needs<R: Read>(
    r: &mut PktReader<R>,
    hash: gix::hash::Kind,
) -> Result<Option<Needs>, SessionError> {
    let mut needs = Needs::default();
    let mut seen = gix::hashtable::HashSet::default();
    r.start_request();
    loop {
        let line = match r.read_required()? {
            Packet::Flush => break,
            Packet::Data(d) => Packet::Data(d).line().unwrap_or_default().to_vec(),
            other => {
                return Err(SessionError::Protocol(format!(
                    "git upload-pack: protocol error, expected to get object ID, not '{}'",
                    special_name(&other)
                )))
            }
        };
        if parse_deepen_line(&line, hash, &mut needs.deepen)? {
            continue;
        }
        if let Some(spec) = line.strip_prefix(b"filter ") {
            if !needs.caps.filter {
                return Err(SessionError::Protocol(
                    "git upload-pack: filtering capability not negotiated".into(),
                ));
            }
            if needs.filter.is_some() {
                return Err(SessionError::Protocol("multiple filter-specs cannot be combined".into()));
            }
            needs.filter = Some(String::from_utf8_lossy(spec).into_owned());
            continue;
        }
        let expected = || {
            SessionError::Protocol(format!(
                "git upload-pack: protocol error, expected to get object ID, not '{}'",
                String::from_utf8_lossy(&line)
            ))
        };
        let Some(rest) = line.strip_prefix(b"want ") else {
            return Err(expected());
        };
        let hex_len = hash.len_in_hex();
        let id = rest.get(..hex_len).and_then(|h| parse_oid(h, hash)).ok_or_else(expected)?;
        let features = &rest[hex_len..];
        if !features.is_empty() && features[0] != b' ' {
            return Err(expected());
        }
        needs.caps.merge(ClientCaps::parse(features));
        if let Some(sid) = feature_value(features, b"session-id") {
            crate::trace2::data("transfer", "client-sid", &sid);
            needs.session_id = Some(sid);
        }
        if let Some(agent) = feature_value(features, b"agent") {
            needs.agent = Some(agent);
        }
        if needs.caps.deepen_relative {
            needs.deepen.relative = true;
        }
        if seen.insert(id) {
            needs.wants.push(id);
        }
    }
    Ok((!needs.wants.is_empty()).then_some(needs))
}

/// How a special packet is named in messages: as it is written on the wire.
fn special_name(p: &Packet<'_>) -> &'static str {
    match p {
        Packet::Flush => "0000",
        Packet::Delim => "0001",
        Packet::ResponseEnd => "0002",
        Packet::Data(_) => "data",
    }
}

/// Outcome of the have/ACK exchange.
pub enum Negotiated {
    /// Send the pack.
    SendPack,
    /// A stateless round ended without `done`: the response is complete.
    RoundDone,
}

/// git's `get_common_commits`: answers haves until `done` (or, with `no-done`, until ready).
pub fn get_common_commits<R: Read, W: Write>(
    repo: &Repo,
    r: &mut PktReader<R>,
    w: &mut PktWriter<W>,
    neg: &mut Negotiator,
    wants: &[ObjectId],
    caps: ClientCaps,
    stateless: bool,
) -> Result<Negotiated, SessionError> {
    let hash = repo.odb.hash_kind();
    let mut last: Option<ObjectId> = None;
    let mut got_common = false;
    let mut got_other = false;
    let mut sent_ready = false;
    let odb = &repo.odb;
    let internal = SessionError::internal;
    loop {
        let pkt = r.read_required()?;
        let line = match pkt {
            Packet::Flush => {
                if let Some(last) = last.filter(|_| caps.multi_ack == 2 && got_common && !got_other) {
                    if neg.ok_to_give_up(odb, wants).map_err(internal)? {
                        sent_ready = true;
                        w.line(format!("ACK {} ready", last.to_hex()))?;
                    }
                }
                if neg.common().is_empty() || caps.multi_ack > 0 {
                    w.line("NAK")?;
                }
                if let Some(last) = last.filter(|_| caps.no_done && sent_ready) {
                    w.line(format!("ACK {}", last.to_hex()))?;
                    w.flush()?;
                    return Ok(Negotiated::SendPack);
                }
                w.flush()?;
                if stateless {
                    return Ok(Negotiated::RoundDone);
                }
                // Each round of haves is a request of its own for maxRequestBytes.
                r.start_request();
                got_common = false;
                got_other = false;
                continue;
            }
            Packet::Data(d) => Packet::Data(d).line().unwrap_or_default().to_vec(),
            other => {
                return Err(SessionError::Protocol(format!(
                    "git upload-pack: expected SHA1 list, got '{}'",
                    special_name(&other)
                )))
            }
        };
        if let Some(hex) = line.strip_prefix(b"have ") {
            super::check_limits(&repo.config.limits, 0, neg.haves_seen() + 1, &Default::default())?;
            let id = parse_oid(hex, hash).ok_or_else(|| {
                SessionError::Protocol(format!(
                    "git upload-pack: expected SHA1 object, got '{}'",
                    String::from_utf8_lossy(hex)
                ))
            })?;
            match neg.have(odb, &id).map_err(internal)? {
                Have::Unknown => {
                    got_other = true;
                    if caps.multi_ack > 0 && neg.ok_to_give_up(odb, wants).map_err(internal)? {
                        if caps.multi_ack == 2 {
                            sent_ready = true;
                            w.line(format!("ACK {} ready", id.to_hex()))?;
                        } else {
                            w.line(format!("ACK {} continue", id.to_hex()))?;
                        }
                    }
                }
                Have::Common { .. } => {
                    got_common = true;
                    last = Some(id);
                    match caps.multi_ack {
                        2 => w.line(format!("ACK {} common", id.to_hex()))?,
                        1 => w.line(format!("ACK {} continue", id.to_hex()))?,
                        _ if neg.common().len() == 1 => w.line(format!("ACK {}", id.to_hex()))?,
                        _ => {}
                    }
                }
            }
            continue;
        }
        if line == b"done" {
            if let Some(id) = last.or_else(|| neg.common().last().copied()) {
                // git acknowledges the last common id seen in any round.
                if caps.multi_ack > 0 {
                    w.line(format!("ACK {}", id.to_hex()))?;
                }
            } else {
                w.line("NAK")?;
            }
            w.flush()?;
            return Ok(Negotiated::SendPack);
        }
        return Err(SessionError::Protocol(format!(
            "git upload-pack: expected SHA1 list, got '{}'",
            String::from_utf8_lossy(&line)
        )));
    }
}

/// Serves a v0/v1 connection (or one stateless request).
pub fn serve<R: Read, W: Write>(
    repo: &Repo,
    r: &mut PktReader<R>,
    w: &mut PktWriter<W>,
    settings: &Settings,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let hash = repo.odb.hash_kind();
    summary.commands.push(if settings.advertise_refs { "advertise" } else { "upload-pack" });
    let advertising = settings.advertise_refs || !settings.stateless_rpc;
    if advertising && settings.version == Version::V1 {
        w.line("version 1")?;
    }
    // git reads upload-pack's configuration once the version line is out, then the refs.
    repo.config.check(ReadAt::UPLOAD_PACK)?;
    let refs = super::read_refs(repo, settings, None)?;
    if advertising {
        // Peeling the advertised refs reads objects (a malformed core.commitGraph ends it).
        if !refs.is_empty() {
            repo.config.check(&[ReadAt::Objects])?;
        }
        advertise(
            w,
            &repo.odb,
            &refs,
            &super::advertised(repo, settings, settings.stateless_rpc || settings.advertise_refs),
            hash,
        )?;
        // A shallow repository tells its boundary (git's advertise_shallow_grafts).
        let mut shallow: Vec<_> = repo.odb.shallow().iter().copied().collect();
        shallow.sort();
        for s in shallow {
            w.line(format!("shallow {}", s.to_hex()))?;
        }
        w.flush_pkt()?;
        w.flush()?;
    }
    if settings.advertise_refs {
        return Ok(());
    }
    let Some(mut needs) = receive_needs(r, hash)? else {
        return Ok(());
    };
    repo.config.check(&[ReadAt::Objects])?;
    summary.wants = needs.wants.len();
    summary.shallow = needs.deepen.any();
    summary.client_agent = needs.agent.clone();
    summary.client_sid = needs.session_id.clone();
    super::check_limits(&repo.config.limits, needs.wants.len(), 0, &needs.deepen)?;
    // A `filter` capability counts only when advertised (uploadpack.allowFilter), as in git.
    if needs.filter.is_some() && !repo.config.allow_filter {
        return Err(SessionError::Protocol("git upload-pack: filtering capability not negotiated".into()));
    }

    // Wants must be advertised tips; a stateless request may name anything reachable from them,
    // since the refs may have moved since the advertisement.
    let rules = super::want_rules(repo, &refs, false, settings.stateless_rpc)?;
    super::check_wants(repo, w, &needs.wants, &rules)?;
    let filter = super::parse_filter(repo, &refs, needs.filter.as_deref())?;
    summary.filter = needs.filter.clone();

    // Shallow lines go out right after the wants, before any have.
    let shallow = if needs.deepen.any() {
        let info = super::prepare_shallow(repo, &refs, &needs.wants, &needs.deepen, false)?;
        if info.computed {
            super::write_shallow_lines(w, &info)?;
            w.flush_pkt()?;
            w.flush()?;
        }
        info
    } else {
        Default::default()
    };
    let mut wanted: gix::hashtable::HashSet<ObjectId> = needs.wants.iter().copied().collect();
    for p in &shallow.extra_wants {
        if wanted.insert(*p) {
            needs.wants.push(*p);
        }
    }

    // A stateless request may end here: the first request of a shallow fetch over smart HTTP
    // only wants the shallow lines. git reads this point gently, as any end of input.
    if settings.stateless_rpc && r.peek_gentle()?.is_none() {
        return Ok(());
    }
    let mut neg = Negotiator::new();
    match get_common_commits(repo, r, w, &mut neg, &needs.wants, needs.caps, settings.stateless_rpc)? {
        Negotiated::RoundDone => return Ok(()),
        Negotiated::SendPack => {}
    }
    let framing = match needs.caps.side_band {
        2 => Framing::SideBand64k,
        1 => Framing::SideBand,
        _ => Framing::Raw,
    };
    let mut common = neg.common().to_vec();
    common.extend(shallow.extra_common.iter().copied());
    send_pack(
        repo,
        w,
        PackRequest {
            wants: &needs.wants,
            shallow: shallow.boundary,
            common: &common,
            filter,
            include_tags: super::included_tags(repo, &refs, needs.caps.include_tag)?,
            framing,
            progress: !needs.caps.no_progress,
            options: PackOptions { ofs_delta: needs.caps.ofs_delta, thin: needs.caps.thin_pack },
            uris: None,
            busy_as_err: false,
        },
        summary,
    )?;
    if framing != Framing::Raw {
        w.flush_pkt()?;
    }
    Ok(())
}
