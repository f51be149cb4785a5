//! Helpers for the end-to-end tests: find (and build) the real `simcli`
//! binary and run it the way a user would.

pub mod fuzz;

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
        // target/<profile>/deps/e2e-… (a test) or target/<profile>/fuzz
        // (a binary) → target/<profile>
        let parent = exe.parent().expect("target/<profile>");
        let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
            parent.parent().expect("target/<profile>")
        } else {
            parent
        };
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

/// The `.rhai` files in these folders of the workspace, sorted.
pub fn rhai_files(dirs: &[&str]) -> Vec<PathBuf> {
    let mut scripts = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(workspace().join(dir)).expect("a scripts folder") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "rhai") {
                scripts.push(path);
            }
        }
    }
    scripts.sort();
    scripts
}

/// The arguments a script's header asks its tests to run it with (a
/// `// tested with: --set quick=true` line: a long sweep's quick form), if
/// any.
pub fn tested_with(script: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(script).expect("the script reads");
    text.lines()
        .find_map(|line| line.strip_prefix("// tested with: "))
        .map(|args| args.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A fresh, empty folder for one test's output, under `target/e2e/`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace().join("target").join("e2e").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Runs `simcli run SCRIPT --json --out DIR` and returns the exit code and
/// the parsed report.
pub fn run_json(script: &str, out: &Path) -> (Option<i32>, serde_json::Value) {
    run_json_with(script, out, &[])
}

/// [`run_json`] with more arguments (e.g. `--set quick=true`).
pub fn run_json_with(script: &str, out: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out_dir = out.to_str().expect("a UTF-8 path");
    let mut args = vec!["run", script, "--json", "--out", out_dir];
    args.extend_from_slice(extra);
    let output = run_simcli(&args);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "simcli printed no JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

/// The runs of a JSON report, in order.
pub fn runs(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["output"]
        .as_array()
        .expect("an output list")
        .iter()
        .filter_map(|item| item.get("run"))
        .collect()
}

/// The makespan of each run of a JSON report, in nanoseconds, in order.
pub fn makespans(report: &serde_json::Value) -> Vec<u64> {
    runs(report)
        .iter()
        .map(|r| r["stats"]["makespan"].as_u64().expect("a makespan"))
        .collect()
}

/// One thread's statistics in a run of a JSON report.
pub fn thread<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["stats"]["threads"]
        .as_array()
        .expect("a thread list")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no thread {name} in the report"))
}

/// Milliseconds as the nanoseconds a JSON report holds.
pub fn ms(n: f64) -> u64 {
    (n * 1e6).round() as u64
}

/// Runs `scripts/SCRIPT` with `--json` into a scratch folder named after
/// `group` and the script, checks it exits 0 and that every chart it drew
/// decodes (each run's Gantt chart but a sweep point's, which has none, and
/// the charts the script drew itself), and returns the report.
pub fn script_report(script: &str, group: &str) -> serde_json::Value {
    let stem = script.trim_end_matches(".rhai");
    let out = scratch(&format!("{group}-{stem}"));
    let (code, report) = run_json(&format!("scripts/{script}"), &out);
    assert_eq!(code, Some(0), "{script}: {report}");
    for run in runs(&report) {
        if run["sweep"] == true {
            continue;
        }
        let chart = run["chart"].as_str().expect("a chart");
        decode_png(Path::new(chart));
    }
    for item in report["output"].as_array().expect("an output list") {
        if let Some(chart) = item["chart"].as_str().filter(|c| c.ends_with(".png")) {
            decode_png(Path::new(chart));
        }
    }
    report
}

/// What the script printed at its top level, in order.
pub fn prints(report: &serde_json::Value) -> Vec<String> {
    report["output"]
        .as_array()
        .expect("an output list")
        .iter()
        .filter_map(|item| item["print"].as_str().map(str::to_string))
        .collect()
}

/// The report of the device with this name in a run.
pub fn device<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["devices"]
        .as_array()
        .expect("a device list")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name} in the report"))
}

/// Decodes a PNG file and returns its width and height, checking that it
/// is not one flat colour.
pub fn decode_png(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixel data");
    let pixels = &pixels[..info.buffer_size()];
    let first = &pixels[..3];
    assert!(
        pixels.chunks(3).any(|p| p != first),
        "{} is one flat colour",
        path.display()
    );
    (info.width, info.height)
}
