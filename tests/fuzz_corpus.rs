//! Replays every committed fuzz input (`fuzz/corpus/<target>/*`: the seeds, what the fuzzer
//! kept, and the reproducers of fixed findings) through the same entry points the fuzz targets
//! use (`packserve::fuzz_entry`), so the corpora are regression inputs in a plain `cargo test`:
//! none may panic.

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    for t in packserve::fuzz_entry::TARGETS {
        let dir = corpus_dir().join(t);
        assert!(!files(&dir).is_empty(), "no corpus for fuzz target {t} in {}", dir.display());
    }
    for d in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = d.unwrap().file_name().into_string().unwrap();
        assert!(
            packserve::fuzz_entry::TARGETS.contains(&name.as_str()),
            "fuzz/corpus/{name}: no such target"
        );
    }
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    for t in packserve::fuzz_entry::TARGETS {
        assert!(manifest.contains(&format!("name = \"{t}\"")), "fuzz/Cargo.toml has no target {t}");
    }
}

fn replay(target: &str) {
    let mut failed = Vec::new();
    let inputs = files(&corpus_dir().join(target));
    for path in &inputs {
        // (A file may vanish while a --grow fuzz run reduces the corpus.)
        let Ok(data) = std::fs::read(path) else { continue };
        let ok = std::panic::catch_unwind(|| assert!(packserve::fuzz_entry::run(target, &data)));
        if ok.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panicked:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

macro_rules! replay_tests {
    ($($t:ident),*) => { $( #[test] fn $t() { replay(stringify!($t)); } )* };
}

replay_tests!(pktline, v0_request, v2_request, filter, shell, daemon, http, session);

/// The session seeds name the fixture's objects: a captured clone still gets a whole pack, so
/// the fuzzer starts from requests that reach the pack writer.
#[test]
fn session_seeds_reach_the_pack() {
    for seed in [
        "seed-clone-strict-v0",
        "seed-clone-open-v2",
        "seed-fetch-haves-v1",
        "seed-shallow-open-v2-stateless1",
    ] {
        let data = std::fs::read(corpus_dir().join("session").join(seed)).unwrap();
        let out = packserve::fuzz_entry::session_output(&data);
        assert!(
            out.windows(4).any(|w| w == b"PACK"),
            "{seed}: no pack in the answer:\n{}",
            String::from_utf8_lossy(&out)
        );
    }
}
