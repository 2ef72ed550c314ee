//! State shared between packserve processes on one host, through the file system: packserve is
//! started once per request (sshd, CGI, inetd), so whatever spans requests lives in files.
//! Knows files, locks and keys; nothing of pkt-lines or of the protocol. Every failure here
//! falls back to serving without it.

pub mod reach;
