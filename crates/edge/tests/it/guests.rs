//! Builds the guest modules (guests/, wasm32-wasip2) from source, once per test process, and says
//! where the components are. Shared by the edge crate's tests and the workspace's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The folder holding `image_classifier.wasm`, `tabular.wasm`, `raw_tensor.wasm` and
/// `misbehave.wasm`.
#[allow(clippy::disallowed_methods, reason = "a test helper: it builds where the test run's cargo builds")]
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().find(|p| p.join("guests/Cargo.toml").exists());
        let root = root.expect("the repository's guests/ folder");
        // Beside the host's own build, so a warm target folder serves both.
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("guests");
        let rustup = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).current_dir(root).status();
        if !rustup.is_ok_and(|s| s.success()) {
            eprintln!("rustup could not add wasm32-wasip2; trying the build anyway");
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(root.join("guests"))
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the guest modules did not build (guests/, wasm32-wasip2)");
        target.join("wasm32-wasip2/release")
    })
}
