//! Fuzz target `pktline`: see `packserve::fuzz_entry::pktline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::pktline(data));
