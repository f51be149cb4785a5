//! Exploration speed through the Rust API: the two-thread counter (a plain
//! load and store each, one CPU), explored with the random strategy.
//!
//! Run: `cargo run --release -p sim-core --example explore_counter [RUNS] [JOBS]`

use std::time::Instant;

use sim_core::explore::{explore, ExploreOptions, Failed, Scenario, Strategy, Verdict};
use sim_core::kernel::Chooser;
use sim_core::{Machine, ProcessId, Simulation};

struct Counter;

impl Scenario for Counter {
    fn run(&mut self, chooser: Box<dyn Chooser>, _seed: u64) -> Verdict {
        let mut s = Simulation::new(Machine::textbook()).expect("a valid machine");
        s.set_chooser(chooser);
        let x = s.variable(ProcessId::MAIN, "x", 0);
        for name in ["a", "b"] {
            s.add_thread(name, move |ctx| {
                let v = ctx.load(x);
                ctx.store(x, v + 1);
            });
        }
        let run = s.run();
        let value = run.trace.variables[0].value;
        Verdict {
            failure: (value != 2).then(|| Failed::from("lost update".to_string())),
            decisions: run.decisions,
            outcome: value.to_string(),
        }
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: RUNS JOBS"))
        .collect();
    let runs = args.first().copied().unwrap_or(100_000);
    let jobs = args.get(1).copied().unwrap_or(1) as usize;
    let options = ExploreOptions {
        runs,
        strategy: Strategy::Random,
        jobs,
        seed: 0,
        keep_going: true,
    };
    // Wall-clock time is read only to report speed.
    let start = Instant::now();
    let report = explore(&options, || Counter, |_| {});
    let seconds = start.elapsed().as_secs_f64();
    println!("outcomes: {:?}", report.outcomes);
    println!(
        "schedules: {:.0} schedules/s ({} runs, {jobs} jobs)",
        report.runs as f64 / seconds,
        report.runs
    );
}
