//! The long fuzz run of issue 18: generates and mangles scripts, runs each
//! with the release `simcli` under a 20 s and 2 GiB cap, prints the table.
//!
//! ```text
//! cargo run --release -p simcli-tests --bin fuzz -- --scripts 10000 [--seed S] [--jobs J]
//! ```

use std::time::Duration;

use simcli_tests::fuzz::{corpus, fuzz, Caps, Plan};

fn main() {
    let mut scripts = 10_000;
    let mut seed = 1;
    let mut jobs = 2;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--scripts", Some(v)) => scripts = v as usize,
            ("--seed", Some(v)) => seed = v,
            ("--jobs", Some(v)) => jobs = v as usize,
            _ => {
                eprintln!("usage: fuzz [--scripts N] [--seed S] [--jobs J]");
                std::process::exit(2);
            }
        }
    }
    let root = simcli_tests::workspace();
    let plan = Plan {
        scripts,
        seed,
        quick: false,
        jobs,
        caps: Caps {
            time: Duration::from_secs(20),
            memory: 2 << 30,
        },
        dir: root.join("target").join(format!("fuzz-{seed}")),
        corpus: corpus(&root.join("scripts")),
    };
    let _ = std::fs::remove_dir_all(&plan.dir);
    let simcli = simcli_tests::simcli();
    let tally = fuzz(simcli, &plan, |i, path, ending| {
        if ending.panic || ending.hang || ending.over_memory || ending.no_position {
            eprintln!("{i}: {ending:?} {}", path.display());
        } else if i % 500 == 0 {
            eprintln!("{i} scripts");
        }
    });
    print!("{tally}");
    println!(
        "caps: 20 s wall clock and 2 GiB RSS per script; simcli given --max-memory 1GiB and --timeout 15 (run) or 2 per schedule (explore); seed {seed}"
    );
}
