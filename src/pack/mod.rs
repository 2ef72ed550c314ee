//! How objects are sent: where their stored bytes are, what can be reused, and the pack stream.
//!
//! Knows nothing of the protocol or capabilities: the session hands it a plain
//! [`common::PackOptions`]. Knows nothing of where objects outside the packs come from either:
//! what it must read whole (loose objects, objects it re-encodes) it asks of an [`Objects`],
//! which the caller provides. Inside, the arrows run one way: `writer` → `reuse`, `search`,
//! `plan` → `window` → `source`, `read`, `delta`; what they share (options, counters, errors,
//! entry headers, compression) is in the leaf `common`, which imports none of them.

pub mod common;
pub mod delta;
pub mod idx;
pub mod midx;
pub mod plan;
pub mod read;
pub mod reuse;
pub mod search;
pub mod source;
pub mod window;
pub mod writer;

use gix::hash::{oid, ObjectId};
use gix::objs::Kind;

pub use source::ObjNum;

/// Reading an object failed (the message names it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ObjectError(pub String);

/// What the pack layer reads through its caller: whole objects by number, and the numbering.
pub trait Objects {
    /// Reads object number `num` into `buf`, returning its kind.
    fn read(&self, num: ObjNum, buf: &mut Vec<u8>) -> Result<Kind, ObjectError>;
    /// The id of object number `num`.
    fn id(&self, num: ObjNum) -> ObjectId;
    /// The number of `id`, if the object exists.
    fn num(&self, id: &oid) -> Option<ObjNum>;
    /// The kind and size of object number `num`.
    fn header(&self, num: ObjNum) -> Result<(Kind, u64), ObjectError>;
    /// The size of object number `num` (cheaper than [`Objects::header`]: a stored delta's kind
    /// is its chain's base's, found by reading every header down the chain).
    fn size(&self, num: ObjNum) -> Result<u64, ObjectError> {
        self.header(num).map(|h| h.1)
    }
    /// The repository's hash kind.
    fn hash_kind(&self) -> gix::hash::Kind;
}
