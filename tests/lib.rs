//! Helpers for the end-to-end tests: find (and build) the real `simcli`
//! binary and run it the way a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
}

/// The `simcli` binary of the profile these tests were built with, built
/// first so that it is never stale.
pub fn simcli() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/e2e-… → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-q", "-p", "sim-cli", "--bin", "simcli"])
            .current_dir(workspace());
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building simcli failed");
        profile_dir.join("simcli")
    })
}

/// Runs `simcli` with `args` from the workspace root.
pub fn run_simcli(args: &[&str]) -> Output {
    Command::new(simcli())
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("simcli starts")
}
