//! Jitter: durations perturbed through the chooser, bounded, replayable.

use sim_core::kernel::{jittered, ChoicePoint, FirstChooser, RandomChooser, ReplayChooser};
use sim_core::{us, Run, SchedulerKind, Simulation};

use crate::{end_ns, textbook};

/// One thread per CPU: `c` computes 100us, sleeps 50us, computes 100us.
fn run(percent: Option<u32>, chooser: Box<dyn sim_core::kernel::Chooser>) -> Run {
    let mut s = Simulation::new(textbook(3, SchedulerKind::Fifo)).unwrap();
    s.set_chooser(chooser);
    if let Some(percent) = percent {
        s.set_jitter(percent);
    }
    for name in ["a", "b", "c"] {
        s.add_thread(name, |ctx| {
            ctx.compute(us(100));
            ctx.sleep(us(50));
            ctx.compute(us(100));
        });
    }
    s.run()
}

#[test]
fn the_default_chooser_keeps_durations_as_written() {
    let run = run(Some(10), Box::new(FirstChooser));
    let stats = run.stats();
    for name in ["a", "b", "c"] {
        assert_eq!(end_ns(&stats, name), 250_000);
    }
    // Three durations per thread, each asked once.
    let asked = run
        .decisions
        .iter()
        .filter(|d| d.point == ChoicePoint::Jitter);
    assert_eq!(asked.count(), 9);
}

#[test]
fn random_jitter_stays_within_the_percent_and_replays_exactly() {
    let mut ends = std::collections::BTreeSet::new();
    for seed in 0..20 {
        let first = run(Some(10), Box::new(RandomChooser::new(seed)));
        let stats = first.stats();
        for name in ["a", "b", "c"] {
            let end = end_ns(&stats, name);
            // 250us of durations, each within 10% either way.
            assert!((225_000..=275_000).contains(&end), "{name} ends at {end}");
            ends.insert(end);
        }
        // Each jitter decision is one of 201 options, and the durations
        // follow from the decisions alone.
        let jitters: Vec<_> = first
            .decisions
            .iter()
            .filter(|d| d.point == ChoicePoint::Jitter)
            .collect();
        assert_eq!(jitters.len(), 9);
        assert!(jitters.iter().all(|d| d.options == 201));
        let replay = run(
            Some(10),
            Box::new(ReplayChooser::new(first.decisions.clone())),
        );
        assert_eq!(replay.trace, first.trace);
    }
    assert!(ends.len() > 20, "jitter varies the end times: {ends:?}");
}

#[test]
fn a_thread_ends_when_its_perturbed_durations_add_up() {
    // Thread a alone: compute 100us (+1%), sleep 50us (-2%), compute 100us.
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let decisions = vec![
        sim_core::kernel::Decision {
            point: ChoicePoint::Jitter,
            options: 41,
            chosen: 19,
        },
        sim_core::kernel::Decision {
            point: ChoicePoint::Jitter,
            options: 41,
            chosen: 40,
        },
    ];
    s.set_chooser(Box::new(ReplayChooser::new(decisions)));
    s.set_jitter(2);
    s.add_thread("a", |ctx| {
        ctx.compute(us(100));
        ctx.sleep(us(50));
        ctx.compute(us(100));
    });
    let run = s.run();
    assert_eq!(jittered(100_000, 19), 101_000);
    assert_eq!(jittered(50_000, 40), 49_000);
    assert_eq!(end_ns(&run.stats(), "a"), 101_000 + 49_000 + 100_000);
}
