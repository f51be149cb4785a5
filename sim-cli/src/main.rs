//! `simcli`: the command-line front of the simulator. For now it prints its
//! version; `run`, `check` and `api` arrive with the scripting layer.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("simcli {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help") | Some("-h") | None => {
            println!(
                "simcli {}: a deterministic simulator of concurrency",
                env!("CARGO_PKG_VERSION")
            );
            println!();
            println!("usage: simcli --version");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("simcli: unknown argument `{other}`; try `simcli --help`");
            ExitCode::from(2)
        }
    }
}
