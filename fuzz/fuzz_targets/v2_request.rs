//! Fuzz target `v2_request`: see `packserve::fuzz_entry::v2_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::v2_request(data));
