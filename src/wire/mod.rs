//! Bytes on the wire: pkt-line framing and side-band multiplexing.
//!
//! Owns the framing only; knows nothing of wants, haves or packs.

pub mod pktline;
pub mod sideband;
