//! One connection: picks v0/v1 or v2 and owns the state of each request. Reads pkt-lines
//! through [`crate::wire`], asks [`crate::negotiate`] and [`crate::select`] for decisions and
//! streams the pack through [`crate::pack`].

pub mod caps;
pub mod v0;
pub mod v2;

use std::io::{Read, Write};

use gix::hash::ObjectId;

use crate::pack::plan::Plan;
use crate::pack::writer::{self, PackOptions};
use crate::repo::Repo;
use crate::select::{bitmap, walk};
use crate::wire::pktline::{PktReader, PktWriter, ReadError};
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
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Protocol version, from `GIT_PROTOCOL`.
    pub version: Version,
    /// One request, one response (smart HTTP).
    pub stateless_rpc: bool,
    /// Only print the advertisement.
    pub advertise_refs: bool,
}

/// Why a session ended in failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client sent something we refuse; the message is git's wording (without `fatal: `).
    #[error("{0}")]
    Protocol(String),
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
    let mut writer = PktWriter::new(output);
    let res = match settings.version {
        Version::V2 => v2::serve(repo, &mut reader, &mut writer, settings, summary),
        Version::V0 | Version::V1 => v0::serve(repo, &mut reader, &mut writer, settings, summary),
    };
    // A refused request is told to the client too, where the protocol has room for it (the
    // pack has not started: errors after that go to band 3 in send_pack).
    if let Err(SessionError::Protocol(msg)) = &res {
        let _ = writer.error(msg);
    }
    // Whatever happened, push out what was written.
    let flushed = writer.flush();
    res?;
    flushed?;
    Ok(())
}

/// What to pack, in plain values.
pub(crate) struct PackRequest<'a> {
    pub wants: &'a [ObjectId],
    pub common: &'a [ObjectId],
    pub include_tags: Vec<ObjectId>,
    pub framing: Framing,
    pub progress: bool,
    pub options: PackOptions,
}

/// Enumerates, plans and streams the pack. An error after the first byte is reported on band 3
/// (or as `ERR`), so the client never takes a truncated pack for a complete one.
pub(crate) fn send_pack<W: Write>(
    repo: &Repo,
    writer: &mut PktWriter<W>,
    req: PackRequest<'_>,
    summary: &mut Summary,
) -> Result<(), SessionError> {
    let mut sb = SideBand::new(writer, req.framing, req.progress);
    let result = (|| -> Result<writer::PackStats, SessionError> {
        let walk_req = walk::Request {
            wants: req.wants.to_vec(),
            common: req.common.to_vec(),
            include_tags: req.include_tags.clone(),
        };
        // issue 5: reachability bitmaps when the request allows them, else the walk.
        let conditions = bitmap::Conditions {
            shallow: summary.shallow,
            filter: summary.filter.is_some(),
            ..bitmap_conditions(repo)
        };
        let index =
            bitmap::open_if_eligible(&repo.packs, &repo.repo.common_dir().join("objects/pack"), conditions);
        let mut sel = bitmap::select_or_walk(index.as_ref(), &repo.odb, &walk_req, req.options.ofs_delta)
            .map_err(SessionError::internal)?;
        let how = if sel.used_bitmap() { " (bitmap)" } else { "" };
        sb.progress(&format!("Enumerating objects: {}, done{how}.\n", sel.len()))?;
        // The list moves into the plan (membership answers stay with the selection).
        let objects = std::mem::take(&mut sel.objects);
        let mut plan = Plan::new(objects.into_iter().map(|o| (o.id, o.kind, o.name_hash)), &repo.packs);
        plan.verbatim = sel.verbatim;
        let stats = {
            let mut on_entry = |_: &writer::PackStats| {};
            writer::write_pack(
                &mut sb,
                &plan,
                &repo.packs,
                &repo.odb,
                &writer::Known {
                    is_sent: &|id| sel.is_sent(id),
                    client_has: &|id| sel.client_has(id),
                    thin_bases: &sel.thin_bases,
                },
                req.options,
                &mut on_entry,
            )
        };
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

/// What the repository's configuration says about bitmaps: `pack.useBitmaps`, and whether
/// any hidden refs are configured (bitmaps are then left alone).
fn bitmap_conditions(repo: &Repo) -> bitmap::Conditions {
    let config = repo.repo.config_snapshot();
    let hidden = ["uploadpack.hideRefs", "transfer.hideRefs"]
        .iter()
        .any(|k| config.strings(*k).is_some_and(|v| !v.is_empty()));
    bitmap::Conditions {
        disabled: config.boolean("pack.useBitmaps") == Some(false),
        hidden_refs: hidden,
        ..Default::default()
    }
}

/// Parses a hex object id from a protocol line argument.
pub(crate) fn parse_oid(hex: &[u8], kind: gix::hash::Kind) -> Option<ObjectId> {
    if hex.len() != kind.len_in_hex() {
        return None;
    }
    ObjectId::from_hex(hex).ok()
}
