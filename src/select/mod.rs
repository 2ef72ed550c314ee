//! Which objects to send: the walk over commits and trees with the client's side subtracted,
//! and the policy deciding which wants are allowed. Pure over an [`Odb`](crate::odb::Odb):
//! plain values in, plain values out; no pipes, no protocol.

pub mod bitmap;
pub mod ewah;
pub mod filter;
pub mod policy;
pub mod shallow;
pub mod walk;
