//! Property tests over random scenarios.

use proptest::prelude::*;
use sim_core::kernel::{RandomChooser, ReplayChooser};
use sim_core::{
    us, Machine, Outcome, SchedulerKind, Simulation, Span, ThreadOptions, ThreadState, Time,
};

#[derive(Clone, Debug)]
enum Step {
    Compute(u64),
    Sleep(u64),
    Yield,
    Spawn(u64),
}

#[derive(Clone, Debug)]
struct Scenario {
    cpus: u16,
    scheduler: SchedulerKind,
    quantum: u64,
    switch: u64,
    spawn: u64,
    threads: Vec<(i32, i32, Vec<Step>)>,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..3000).prop_map(Step::Compute),
        2 => (1u64..2000).prop_map(Step::Sleep),
        1 => Just(Step::Yield),
        1 => (1u64..500).prop_map(Step::Spawn),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let scheduler = prop_oneof![
        Just(SchedulerKind::Fifo),
        Just(SchedulerKind::RoundRobin),
        Just(SchedulerKind::Priority),
        Just(SchedulerKind::Fair),
    ];
    let thread = (0i32..3, -5i32..6, prop::collection::vec(step(), 1..6));
    (
        1u16..4,
        scheduler,
        100u64..2000,
        0u64..5,
        0u64..40,
        prop::collection::vec(thread, 1..7),
    )
        .prop_map(
            |(cpus, scheduler, quantum, switch, spawn, threads)| Scenario {
                cpus,
                scheduler,
                quantum,
                switch,
                spawn,
                threads,
            },
        )
}

impl Scenario {
    fn machine(&self) -> Machine {
        Machine {
            cpus: self.cpus,
            scheduler: self.scheduler,
            quantum: us(self.quantum),
            context_switch: us(self.switch),
            process_switch: us(self.switch),
            thread_spawn: us(self.spawn),
            slice: Some(us(self.quantum * 3)),
            granularity: Some(us(self.quantum / 4 + 1)),
            ..Machine::default()
        }
    }

    fn simulation(&self) -> Simulation {
        let mut sim = Simulation::new(self.machine()).unwrap();
        for (i, (priority, nice, steps)) in self.threads.iter().enumerate() {
            let steps = steps.clone();
            sim.add_thread_with(
                &format!("t{i}"),
                ThreadOptions {
                    priority: *priority,
                    nice: *nice,
                },
                move |ctx| {
                    for step in steps {
                        match step {
                            Step::Compute(d) => ctx.compute(us(d)),
                            Step::Sleep(d) => ctx.sleep(us(d)),
                            Step::Yield => ctx.yield_now(),
                            Step::Spawn(d) => {
                                let child =
                                    ctx.start_thread("child", move |ctx| ctx.compute(us(d)));
                                ctx.join(child);
                            }
                        }
                    }
                },
            );
        }
        sim
    }

    /// The same scenario with stackless threads (and stackless children).
    fn stackless_simulation(&self) -> Simulation {
        let mut sim = Simulation::new(self.machine()).unwrap();
        for (i, (priority, nice, steps)) in self.threads.iter().enumerate() {
            let steps = steps.clone();
            sim.add_stackless_thread_to(
                sim_core::ProcessId::MAIN,
                &format!("t{i}"),
                ThreadOptions {
                    priority: *priority,
                    nice: *nice,
                },
                move |ctx| async move {
                    for step in steps {
                        match step {
                            Step::Compute(d) => ctx.compute(us(d)).await,
                            Step::Sleep(d) => ctx.sleep(us(d)).await,
                            Step::Yield => ctx.yield_now().await,
                            Step::Spawn(d) => {
                                let child = ctx
                                    .start_thread("child", move |ctx| async move {
                                        ctx.compute(us(d)).await
                                    })
                                    .await;
                                ctx.join(child).await;
                            }
                        }
                    }
                },
            );
        }
        sim
    }

    /// CPU time asked for: computes, children's computes, and spawn costs.
    fn work(&self) -> Span {
        let mut total = 0;
        for (_, _, steps) in &self.threads {
            for step in steps {
                match step {
                    Step::Compute(d) => total += d,
                    Step::Spawn(d) => total += d + self.spawn,
                    _ => {}
                }
            }
        }
        us(total)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_scenarios_obey_the_invariants(s in scenario(), seed in 0u64..1000) {
        let mut sim = s.simulation();
        sim.set_chooser(Box::new(RandomChooser::new(seed)));
        let run = sim.run();
        prop_assert_eq!(&run.outcome, &Outcome::Completed);

        // No CPU runs two threads at once.
        for cpu in run.trace.cpu_intervals() {
            for pair in cpu.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "overlap {:?}", pair);
            }
        }
        // CPU busy time is the compute asked for plus the switch costs.
        let stats = run.stats();
        let running: Span = stats.cpus.iter().map(|c| c.busy).sum();
        let switching: Span = stats.cpus.iter().map(|c| c.switching).sum();
        let switches: u64 = stats.threads.iter().map(|t| u64::from(t.switches)).sum();
        prop_assert_eq!(running, s.work());
        prop_assert_eq!(switching, us(s.switch * switches));
        // Makespan is at least the total work spread over every CPU.
        let spread = (running + switching).as_nanos().div_ceil(u64::from(s.cpus));
        prop_assert!(stats.makespan.as_nanos() >= spread);
        // A thread's states are a partition of its life.
        for (i, t) in stats.threads.iter().enumerate() {
            let life = t.end.unwrap() - run.trace.threads[i].created;
            let sum = t.cpu + t.ready + t.switching + t.spin + t.blocked_total();
            prop_assert_eq!(sum, life);
        }

        // The same seed gives the same trace.
        let mut again = s.simulation();
        again.set_chooser(Box::new(RandomChooser::new(seed)));
        let again = again.run();
        prop_assert_eq!(&again.trace, &run.trace);

        // Replaying the decisions gives the identical trace.
        let mut replay = s.simulation();
        replay.set_chooser(Box::new(ReplayChooser::new(run.decisions.clone())));
        let replay = replay.run();
        prop_assert_eq!(&replay.trace, &run.trace);
        prop_assert_eq!(replay.trace.to_ron().unwrap(), run.trace.to_ron().unwrap());
    }

    #[test]
    fn stackless_threads_run_as_stackful_ones_under_any_schedule(s in scenario(), seed in 0u64..1000) {
        let mut a = s.simulation();
        a.set_chooser(Box::new(RandomChooser::new(seed)));
        let a = a.run();
        let mut b = s.stackless_simulation();
        b.set_chooser(Box::new(RandomChooser::new(seed)));
        let b = b.run();
        prop_assert_eq!(&b.outcome, &a.outcome);
        prop_assert_eq!(&b.decisions, &a.decisions);
        // The same states at the same times on the same CPUs (the origins
        // differ only in the source lines they point at).
        let states = |run: &sim_core::Run| -> Vec<String> {
            run.trace.states.iter().map(|c| format!("{c:?}")).collect()
        };
        prop_assert_eq!(states(&b), states(&a));
    }

    #[test]
    fn the_default_chooser_is_deterministic(s in scenario()) {
        let a = s.simulation().run();
        let b = s.simulation().run();
        prop_assert_eq!(&a.trace, &b.trace);
        // The default records no decisions: replaying none is the same run,
        // and so is asking a FirstChooser every question.
        prop_assert!(a.decisions.is_empty());
        let mut replay = s.simulation();
        replay.set_chooser(Box::new(ReplayChooser::new(Vec::new())));
        prop_assert_eq!(&replay.run().trace, &a.trace);
        let mut first = s.simulation();
        first.set_chooser(Box::new(sim_core::kernel::FirstChooser));
        let first = first.run();
        prop_assert_eq!(&first.trace, &a.trace);
        prop_assert!(first.decisions.iter().all(|d| d.chosen == 0));
        prop_assert!(a.trace.states.iter().all(|c| c.time() <= a.trace.end));
        prop_assert!(a.trace.states.iter().filter(|c| c.state() == ThreadState::Done).count() == a.trace.threads.len());
        prop_assert!(a.trace.end >= Time::ZERO);
    }
}
