//! The replay property (issue 18): for random concurrent scripts and seeds,
//! every failure `explore` finds replays, exactly as `simcli run --schedule`
//! replays it, to the same failure: byte for byte before shrinking, the
//! same failure (its key: expectation, deadlock cycle, race pair) after.

use std::rc::Rc;

use sim_core::explore::{explore, shrink_failure, ExploreOptions, ShrinkBudget, Strategy};
use sim_core::script::{verdict, Judging, RunOptions, Script, ScriptScenario};
use simcli_tests::fuzz::{concurrent, Rng};
use simcli_tests::scratch;

#[test]
fn every_failure_found_replays_before_and_after_shrinking() {
    let out = scratch("replay-property");
    let options = RunOptions {
        out_dir: out,
        ..RunOptions::default()
    };
    let mut failures = 0;
    for case in 0..24u64 {
        let mut rng = Rng::new(case + 1);
        let source = concurrent(&mut rng);
        let script = Rc::new(Script::compile("property.rhai", &source).expect("it compiles"));
        let judging = Judging {
            races: rng.chance(50),
            histogram: None,
        };
        let strategy = match rng.below(3) {
            0 => Strategy::Random,
            1 => Strategy::Pct { depth: 3 },
            _ => Strategy::Dfs { preemptions: 2 },
        };
        let compile = || Rc::new(Script::compile("property.rhai", &source).expect("it compiles"));
        let make = || ScriptScenario::new(compile(), options.clone(), judging.clone());
        let report = explore(
            &ExploreOptions {
                runs: 60,
                strategy,
                jobs: 1,
                seed: case,
                keep_going: true,
            },
            make,
            |_| {},
        );
        for failure in report.failures.iter().take(3) {
            failures += 1;
            let replay = |decisions: &[sim_core::kernel::Decision]| {
                let outcome = script.run(&RunOptions {
                    schedule: Some(decisions.to_vec()),
                    ..options.clone()
                });
                verdict(&outcome, &judging).failure
            };
            let again = replay(&failure.decisions);
            assert_eq!(
                again.as_ref().map(|f| (&f.key, &f.message)),
                Some((&failure.key, &failure.message)),
                "case {case} ({strategy:?}, races {}): the found schedule does not replay\n{source}",
                judging.races
            );
            let shrunk = shrink_failure(&mut make(), failure, ShrinkBudget::default());
            let again = replay(&shrunk.decisions);
            assert_eq!(
                again.as_ref().map(|f| &f.key),
                Some(&failure.key),
                "case {case} ({strategy:?}, races {}): the shrunk schedule does not replay\n{source}",
                judging.races
            );
        }
    }
    assert!(
        failures >= 10,
        "only {failures} failures found: the property saw too little"
    );
}
