//! How objects are sent: where their stored bytes are, what can be reused, and the pack stream.
//!
//! Knows nothing of the protocol or capabilities: the session hands it a plain [`writer::PackOptions`].

pub mod delta;
pub mod idx;
pub mod midx;
pub mod plan;
pub mod read;
pub mod reuse;
pub mod search;
pub mod source;
pub mod writer;
