//! `simcli`: the command-line front of the simulator. It parses arguments,
//! runs scripts through `sim_core::script`, prints reports and writes charts
//! and traces; it holds no simulation semantics of its own.

mod args;
mod explore;
mod report;
mod run;

use std::process::ExitCode;

use clap::Parser;
use sim_core::script::{api, ErrorStage, Script};

use args::{Cli, Command};

/// Script evaluation allocates many small, short-lived values (Rhai's
/// dynamic values, argument lists); mimalloc serves them faster than the
/// system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a script error, a failed run or a failed expectation.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (bad arguments, unreadable script).
const EXIT_USAGE: u8 = 2;

/// Reads and compiles a script; on failure prints the error and gives the
/// exit status (usage for an unreadable file, failure for a bad script).
pub fn load_script(path: &std::path::Path) -> Result<Script, ExitCode> {
    Script::load(path).map_err(|error| {
        eprint!("{error}");
        ExitCode::from(if error.stage == ErrorStage::Load {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        })
    })
}

fn main() -> ExitCode {
    // A closed pipe (`simcli ... | head`) ends the program quietly, as it
    // does for other command-line tools, instead of panicking on print.
    // SAFETY: restoring the default disposition of a signal at start-up,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Explore(args) => explore::explore(&args),
        Command::Check { script } => match load_script(&script) {
            Ok(script) => {
                for (variable, line, column) in script.captured_assignments() {
                    eprintln!(
                        "warning: {}:{line}:{column}: the closure assigns to `{variable}`, which it captured: \
                         a thread or task has its own copy, so nothing outside it sees the change; \
                         share state through m.variable(...) or a channel",
                        script.name()
                    );
                }
                println!("{}: ok", script.name());
                ExitCode::SUCCESS
            }
            Err(status) => status,
        },
        Command::Api {
            definitions: Some(dir),
        } => match sim_core::script::write_definitions(&dir) {
            Ok(()) => {
                println!("definitions: {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: writing definitions into {}: {error}", dir.display());
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "simcli", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Api { definitions: None } => {
            let entries = api();
            let width = entries
                .iter()
                .map(|e| e.signature.len())
                .max()
                .unwrap_or(0)
                .min(60);
            for entry in entries {
                if entry.signature.len() > width {
                    println!("{}\n{:width$}  {}", entry.signature, "", entry.doc);
                } else {
                    println!("{:width$}  {}", entry.signature, entry.doc);
                }
            }
            ExitCode::SUCCESS
        }
    }
}
