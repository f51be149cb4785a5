//! The trace: RON round trip, derived intervals, replay.

use sim_core::kernel::{RandomChooser, ReplayChooser};
use sim_core::{ms, us, Machine, SchedulerKind, Simulation, ThreadState, Trace};

fn scenario(machine: Machine) -> Simulation {
    let mut sim = Simulation::new(machine).unwrap();
    for i in 0..5u64 {
        sim.add_thread(&format!("w{i}"), move |ctx| {
            for k in 0..4 {
                ctx.compute(us(300 + 100 * i));
                if k % 2 == 0 {
                    ctx.sleep(us(200));
                } else {
                    ctx.yield_now();
                }
            }
            let child = ctx.start_thread("helper", |ctx| ctx.compute(us(50)));
            ctx.join(child);
        });
    }
    sim
}

fn machine() -> Machine {
    Machine {
        cpus: 2,
        quantum: ms(1),
        ..Machine::default()
    }
}

#[test]
fn a_trace_round_trips_through_ron() {
    let run = scenario(machine()).run();
    assert!(run.completed());
    let text = run.trace.to_ron().unwrap();
    let back = Trace::from_ron(&text).unwrap();
    assert_eq!(back, run.trace);
    assert_eq!(back.to_ron().unwrap(), text);
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let run_with = |seed| {
        let mut sim = scenario(machine());
        sim.set_chooser(Box::new(RandomChooser::new(seed)));
        sim.run().trace.to_ron().unwrap()
    };
    assert_eq!(run_with(1), run_with(1));
    assert_ne!(run_with(1), run_with(2));
}

#[test]
fn replaying_the_decisions_gives_the_identical_trace() {
    let mut sim = scenario(machine());
    sim.set_chooser(Box::new(RandomChooser::new(9)));
    let original = sim.run();
    assert!(!original.decisions.is_empty());
    let mut sim = scenario(machine());
    sim.set_chooser(Box::new(ReplayChooser::new(original.decisions.clone())));
    let replayed = sim.run();
    assert_eq!(replayed.decisions, original.decisions);
    assert_eq!(
        replayed.trace.to_ron().unwrap(),
        original.trace.to_ron().unwrap()
    );
}

#[test]
fn a_replay_of_another_scenario_is_refused() {
    let mut sim = scenario(machine());
    sim.set_chooser(Box::new(RandomChooser::new(3)));
    let decisions = sim.run().decisions;
    let mut sim = scenario(Machine {
        cpus: 3,
        ..machine()
    });
    sim.set_chooser(Box::new(ReplayChooser::new(decisions)));
    let run = sim.run();
    let err = run.error().expect("a divergence");
    assert!(err.to_string().contains("replay diverged"), "{err}");
}

#[test]
fn intervals_cover_each_thread_from_creation_to_end_without_gaps() {
    let run = scenario(machine()).run();
    for (i, intervals) in run.trace.thread_intervals().iter().enumerate() {
        let info = &run.trace.threads[i];
        assert_eq!(intervals.first().unwrap().start, info.created);
        for pair in intervals.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert_ne!(pair[0].state, ThreadState::Done);
        }
    }
}

#[test]
fn blocking_operations_record_their_rust_line() {
    let run = scenario(Machine {
        scheduler: SchedulerKind::Fifo,
        ..machine()
    })
    .run();
    let sleep = run
        .trace
        .states
        .iter()
        .find(|s| {
            matches!(
                s.state(),
                ThreadState::Blocked(sim_core::BlockReason::Sleep)
            )
        })
        .unwrap();
    let origin = run.trace.origin(sleep.origin().unwrap()).unwrap();
    assert!(origin.file.ends_with("trace.rs"), "{origin}");
    assert_eq!(origin.line, 13);
}
