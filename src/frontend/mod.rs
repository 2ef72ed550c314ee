//! Front-ends: each unwraps its envelope (arguments, environment) and hands a reader and a
//! writer to [`crate::session::serve`]. None of them parses pkt-lines.

pub mod upload_pack;
