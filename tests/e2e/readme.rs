//! The README's commands and sample outputs, checked against the real tool
//! so that they cannot drift.
//!
//! What is run, from a fresh folder that links the workspace's `scripts/`
//! (so charts and schedules land in that folder's own `plots/`, never in
//! the gallery):
//!
//! - a ```text block whose first line starts with `$ ` is a transcript:
//!   each `$ command` runs in turn, and what it prints on stdout must be
//!   the lines up to the next `$ `;
//! - a ```text block right after a ```sh block of one command is that
//!   command's output.
//!
//! `simcli` and `cargo run --release -p sim-cli --` both stand for the
//! `simcli` these tests build (the same program, without a release build).
//! Outputs are compared line by line, exactly, but for trailing spaces
//! (the report pads its last column; Markdown editors strip them).
//!
//! The other ```sh commands are not run (they build, install or benchmark);
//! the scripts, examples and files they name must exist. Every ```rhai
//! snippet must compile (after `let m = machine();` where it uses `m`
//! without declaring it), and the shared-memory snippet, which is whole,
//! must pass its own expectation. The ```rust block is
//! `sim-core/examples/api_at_a_glance.rs` (which the tests build), line for
//! line.

use std::path::{Path, PathBuf};
use std::process::Command;

use simcli_tests::{run_simcli, scratch, simcli, workspace};

/// A fenced block of the README: its language, first line number and text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in readme.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_string(),
                    line: n + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => out.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md has an unclosed code block");
    out
}

/// The command a README line stands for, as program and arguments.
fn command(line: &str) -> (PathBuf, Vec<String>) {
    let line = line
        .strip_prefix("cargo run --release -p sim-cli -- ")
        .or_else(|| line.strip_prefix("simcli "))
        .unwrap_or_else(|| panic!("README: cannot run `{line}`: only simcli commands run"));
    let args = line.split_whitespace().map(str::to_string).collect();
    (simcli().to_path_buf(), args)
}

/// Trailing spaces, normalised.
fn normalise(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// A folder to run README commands in: `scripts/` links the workspace's.
fn sandbox(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::os::unix::fs::symlink(workspace().join("scripts"), dir.join("scripts")).unwrap();
    dir
}

fn check_output(block: &Block, line: &str, expected: &str, dir: &Path) {
    let (program, args) = command(line);
    let output = Command::new(program)
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("simcli starts");
    let actual = String::from_utf8_lossy(&output.stdout);
    let (actual, expected) = (normalise(&actual), normalise(expected));
    if actual != expected {
        panic!(
            "README.md line {}: `{line}` printed\n{}\n\nbut the README shows\n{}\n\
             (stderr: {})",
            block.line,
            actual.join("\n"),
            expected.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_readme_commands_print_what_the_readme_shows() {
    let blocks = blocks();
    let dir = sandbox("readme-commands");
    let mut checked = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.lang != "text" {
            continue;
        }
        if block.text.starts_with("$ ") {
            // A transcript: commands and their outputs.
            let mut pending: Option<(&str, String)> = None;
            for line in block.text.lines() {
                if let Some(command) = line.strip_prefix("$ ") {
                    if let Some((previous, expected)) = pending.take() {
                        check_output(block, previous, &expected, &dir);
                        checked += 1;
                    }
                    pending = Some((command, String::new()));
                } else if let Some((_, expected)) = &mut pending {
                    expected.push_str(line);
                    expected.push('\n');
                }
            }
            if let Some((previous, expected)) = pending {
                check_output(block, previous, &expected, &dir);
                checked += 1;
            }
        } else if let Some(sh) = i
            .checked_sub(1)
            .map(|j| &blocks[j])
            .filter(|b| b.lang == "sh")
        {
            let line = sh.text.trim();
            assert!(
                !line.contains('\n'),
                "README.md line {}: one command",
                sh.line
            );
            check_output(block, line, &block.text, &dir);
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the README's samples were not found ({checked})"
    );
}

#[test]
fn the_readme_names_only_files_that_exist() {
    for block in blocks().iter().filter(|b| b.lang == "sh") {
        for line in block.text.lines() {
            let line = line.split(" # ").next().unwrap_or(line);
            let words: Vec<&str> = line.split_whitespace().collect();
            for (k, word) in words.iter().enumerate() {
                let path = if k > 0 && words[k - 1] == "--example" {
                    format!("sim-core/examples/{word}.rs")
                } else if word.ends_with(".rhai")
                    || word.ends_with(".py")
                    || word.starts_with("bench/")
                    || word.starts_with("sim-")
                {
                    word.to_string()
                } else {
                    continue;
                };
                assert!(
                    workspace().join(&path).exists(),
                    "README.md line {}: {path} does not exist",
                    block.line
                );
            }
        }
    }
}

#[test]
fn the_readme_snippets_compile_and_the_shared_memory_one_passes() {
    let dir = scratch("readme-snippets");
    let mut whole = 0;
    for block in blocks().iter().filter(|b| b.lang == "rhai") {
        let source = if block.text.contains("let m = machine") {
            block.text.clone()
        } else {
            format!("let m = machine();\n{}", block.text)
        };
        let path = dir.join(format!("line{}.rhai", block.line));
        std::fs::write(&path, &source).unwrap();
        let check = run_simcli(&["check", path.to_str().unwrap()]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "README.md line {}: {}",
            block.line,
            String::from_utf8_lossy(&check.stderr)
        );
        if source.contains("m.expect(") {
            let run = run_simcli(&[
                "run",
                path.to_str().unwrap(),
                "--no-chart",
                "--out",
                dir.to_str().unwrap(),
            ]);
            assert_eq!(
                run.status.code(),
                Some(0),
                "README.md line {}: {}{}",
                block.line,
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            );
            whole += 1;
        }
    }
    assert_eq!(whole, 1, "the shared-memory snippet");
}

#[test]
fn the_readme_rust_block_is_the_example_that_compiles() {
    let readme = blocks()
        .into_iter()
        .find(|b| b.lang == "rust")
        .expect("the README's Rust API block");
    let example =
        std::fs::read_to_string(workspace().join("sim-core/examples/api_at_a_glance.rs")).unwrap();
    let uses: Vec<&str> = example.lines().filter(|l| l.starts_with("use ")).collect();
    let begin = example.find("// README begin\n").expect("a begin marker") + 16;
    let end = example.find("    // README end").expect("an end marker");
    let body: Vec<&str> = example[begin..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    let expected = format!("{}\n\n{}\n", uses.join("\n"), body.join("\n"));
    assert_eq!(
        readme.text, expected,
        "README.md line {}: the Rust block must be sim-core/examples/api_at_a_glance.rs",
        readme.line
    );
}
