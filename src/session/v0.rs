//! Protocol v0 and v1: the ref advertisement, the want lines with their capabilities, the
//! have/ACK exchange (`multi_ack`, `multi_ack_detailed`, `no-done`), then the pack.
//! Step names follow git's upload-pack: advertise, receive_needs, get_common_commits, send pack.

use std::io::{Read, Write};

use gix::hash::ObjectId;

use super::caps::{self, ClientCaps};
use super::{parse_oid, send_pack, PackRequest, SessionError, Settings, Summary, Version};
use crate::negotiate::{Have, Negotiator};
use crate::pack::writer::PackOptions;
use crate::refs::{self, RefSet};
use crate::repo::Repo;
use crate::select::policy::{self, WantPolicy};
use crate::wire::pktline::{Packet, PktReader, PktWriter};
use crate::wire::sideband::Framing;

/// Writes the v0 ref advertisement (without the final flush).
pub fn advertise<W: Write>(
    w: &mut PktWriter<W>,
    refs: &RefSet,
    stateless: bool,
    hash: gix::hash::Kind,
) -> std::io::Result<()> {
    let symref = refs.head.as_ref().and_then(|h| h.symref_target.as_deref()).map(|t| t.as_ref());
    let capabilities = caps::v0_capabilities(stateless, symref, hash_name(hash));
    let mut first = true;
    for r in refs.iter() {
        let mut line = Vec::with_capacity(100);
        line.extend_from_slice(r.id.to_hex().to_string().as_bytes());
        line.push(b' ');
        line.extend_from_slice(&r.name);
        if first {
            line.push(0);
            line.extend_from_slice(&capabilities);
            first = false;
        }
        line.push(b'\n');
        w.data(&line)?;
        if let Some(p) = r.peeled {
            w.line(format!("{} {}^{{}}", p.to_hex(), r.name))?;
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

/// What the client asked for in its want lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Wanted ids, without duplicates, in order.
    pub wants: Vec<ObjectId>,
    /// Capabilities from the first want line.
    pub caps: ClientCaps,
}

/// Reads want lines up to the flush. `Ok(None)` when the client wants nothing.
pub fn receive_needs<R: Read>(
    r: &mut PktReader<R>,
    hash: gix::hash::Kind,
) -> Result<Option<Needs>, SessionError> {
    let mut needs = Needs::default();
    let mut first = true;
    loop {
        let line = match r.read_required()? {
            Packet::Flush => break,
            Packet::Data(d) => Packet::Data(d).line().unwrap_or_default().to_vec(),
            other => {
                return Err(SessionError::Protocol(format!(
                    "git upload-pack: protocol error, expected to get object ID, not '{other:?}'"
                )))
            }
        };
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
        if first {
            needs.caps = ClientCaps::parse(features);
            first = false;
        }
        if !needs.wants.contains(&id) {
            needs.wants.push(id);
        }
    }
    Ok((!needs.wants.is_empty()).then_some(needs))
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
                got_common = false;
                got_other = false;
                continue;
            }
            Packet::Data(d) => Packet::Data(d).line().unwrap_or_default().to_vec(),
            other => {
                return Err(SessionError::Protocol(format!(
                    "git upload-pack: expected SHA1 list, got '{other:?}'"
                )))
            }
        };
        if let Some(hex) = line.strip_prefix(b"have ") {
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
                Have::Common => {
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
    settings: Settings,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let hash = repo.odb.hash_kind();
    summary.commands.push(if settings.advertise_refs { "advertise" } else { "upload-pack" });
    let refs = refs::load(&repo.repo, &repo.odb).map_err(SessionError::internal)?;
    if settings.advertise_refs || !settings.stateless_rpc {
        if settings.version == Version::V1 {
            w.line("version 1")?;
        }
        advertise(w, &refs, settings.stateless_rpc || settings.advertise_refs, hash)?;
        w.flush_pkt()?;
        w.flush()?;
    }
    if settings.advertise_refs {
        return Ok(());
    }
    let Some(needs) = receive_needs(r, hash)? else {
        return Ok(());
    };

    // Wants must be advertised tips; a stateless request may name anything reachable from them,
    // since the refs may have moved since the advertisement.
    let policy = if settings.stateless_rpc { WantPolicy::Reachable } else { WantPolicy::Tips };
    if let Some(bad) = policy::first_disallowed(&repo.odb, &needs.wants, &refs.tips(), policy)
        .map_err(SessionError::internal)?
    {
        let msg = format!("upload-pack: not our ref {}", bad.to_hex());
        w.error(&msg)?;
        w.flush()?;
        return Err(SessionError::Reported(format!("git {msg}")));
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
    send_pack(
        repo,
        w,
        PackRequest {
            wants: &needs.wants,
            common: neg.common(),
            include_tags: if needs.caps.include_tag { refs.annotated_tags() } else { Vec::new() },
            framing,
            progress: !needs.caps.no_progress,
            options: PackOptions { ofs_delta: needs.caps.ofs_delta, thin: needs.caps.thin_pack },
        },
        summary,
    )?;
    if framing != Framing::Raw {
        w.flush_pkt()?;
    }
    Ok(())
}
