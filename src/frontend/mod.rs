//! Front-ends: each unwraps its envelope (arguments, environment) and hands a reader and a
//! writer to [`crate::session::serve`]. None of them parses pkt-lines.

pub mod http_backend;
pub mod inetd;
pub mod request;
pub mod shell;
pub mod upload_pack;
