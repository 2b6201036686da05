//! Where things are: the workspace, the tool cache and the module under test, each resolved one
//! way for every host test and bench.
//!
//! Environment overrides (the only ones): `ADTAP_CACHE` for the cache `./build.sh setup` fills,
//! `ADTAP_WASM` for the module `./build.sh build` writes, `ADTAP_ENVOY`, `ADTAP_TANSU` and
//! `ADTAP_DRAIN` for single tools, and cargo's `CARGO_TARGET_DIR`. The resolvers only say where
//! a thing should be; [`existing`] turns a missing one into an error naming the command that
//! provides it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// `$ADTAP_CACHE`, else `~/.cache/adtap` (where `./build.sh setup` installs Envoy and tansu).
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("ADTAP_CACHE") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/adtap")
}

/// adtap's release module: `$ADTAP_WASM`, else `<repo>/dist/adtap.wasm` (`./build.sh build`).
pub fn wasm() -> PathBuf {
    std::env::var_os("ADTAP_WASM")
        .map_or_else(|| repo_root().join("dist/adtap.wasm"), PathBuf::from)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `$ADTAP_CACHE/target` (what
/// `./build.sh` uses). Helpers that build something (the REST proxy, the bench's no-op filter)
/// pass it on to cargo, so they look where they built.
pub fn target_dir() -> PathBuf {
    env_or("CARGO_TARGET_DIR", || cache_dir().join("target"))
}

/// The Envoy binary: `$ADTAP_ENVOY`, else the cache's virtualenv (`./build.sh setup`).
pub fn envoy() -> PathBuf {
    env_or("ADTAP_ENVOY", || cache_dir().join("venv/bin/envoy"))
}

/// The tansu broker: `$ADTAP_TANSU`, else the cache's `tansu/bin/tansu` (`./build.sh setup`).
pub fn tansu() -> PathBuf {
    env_or("ADTAP_TANSU", || cache_dir().join("tansu/bin/tansu"))
}

/// The lossless stop tool (`filter/drain`): `$ADTAP_DRAIN`, else `<repo>/dist/adtap-drain`
/// (`./build.sh build`).
pub fn drain_tool() -> PathBuf {
    env_or("ADTAP_DRAIN", || repo_root().join("dist/adtap-drain"))
}

/// `path` if it exists, else an error saying what provides it (`provide`, e.g.
/// `"./build.sh setup or set ADTAP_ENVOY"`).
pub fn existing(path: PathBuf, provide: &str) -> Result<PathBuf, String> {
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} not found (run {provide})", path.display()))
    }
}

fn env_or(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var).map_or_else(default, PathBuf::from)
}

/// A 127.0.0.1 port that was free a moment ago (the OS picks it; the listener is closed again).
///
/// Panics when the loopback interface cannot be bound at all: no local test can run then.
#[allow(clippy::panic)]
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("cannot bind a free port on 127.0.0.1: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("host-tests/harness").is_dir());
    }

    #[test]
    fn a_missing_tool_names_what_provides_it() {
        let missing = repo_root().join("no-such-tool");
        let err = existing(missing, "./build.sh setup");
        assert!(
            matches!(&err, Err(e) if e.contains("no-such-tool not found (run ./build.sh setup)")),
            "{err:?}"
        );
        assert_eq!(existing(repo_root(), "x"), Ok(repo_root()));
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
