//! Synchronization primitives: hand-computed timings, deadlock found exactly
//! when the cycle closes and never in the deadlock-free variants, priority
//! inheritance, misuse, and random lock programs.

use proptest::prelude::*;
use sim_core::{
    ms, BlockKind, Misuse, MutexOptions, Outcome, RandomChooser, ReplayChooser, RwPrefer,
    SchedulerKind, SimError, Simulation, SyncAction, ThreadOptions, ThreadState,
};

use crate::{end_ns, textbook};

const MS: u64 = 1_000_000;

fn sim(cpus: u16, scheduler: SchedulerKind) -> Simulation {
    Simulation::new(textbook(cpus, scheduler)).unwrap()
}

#[test]
fn a_fair_mutex_hands_over_to_the_waiter_at_unlock() {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let m = s.mutex("m", MutexOptions::default());
    s.add_thread("a", move |ctx| {
        ctx.lock(m);
        ctx.compute(ms(10));
        ctx.unlock(m);
    });
    s.add_thread("b", move |ctx| {
        ctx.lock(m);
        ctx.compute(ms(5));
        ctx.unlock(m);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    assert_eq!(end_ns(&stats, "a"), 10 * MS);
    assert_eq!(end_ns(&stats, "b"), 15 * MS);
    assert_eq!(
        stats
            .thread("b")
            .unwrap()
            .blocked_on(BlockKind::Lock)
            .as_nanos(),
        10 * MS
    );
    let waits: Vec<u64> = run
        .trace
        .sync
        .iter()
        .filter_map(|e| match e.action {
            SyncAction::Acquired { waited, .. } => Some(waited.as_nanos()),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [0, 10 * MS]);
}

/// a takes m1 then m2, b takes m2 then m1, each computing 1ms in between.
fn opposite_order(ordered: bool) -> Simulation {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let m1 = s.mutex("m1", MutexOptions::default());
    let m2 = s.mutex("m2", MutexOptions::default());
    s.add_thread("a", move |ctx| {
        ctx.lock(m1);
        ctx.compute(ms(1));
        ctx.lock(m2);
        ctx.unlock(m2);
        ctx.unlock(m1);
    });
    let (first, second) = if ordered { (m1, m2) } else { (m2, m1) };
    s.add_thread("b", move |ctx| {
        ctx.lock(first);
        ctx.compute(ms(1));
        ctx.lock(second);
        ctx.unlock(second);
        ctx.unlock(first);
    });
    s
}

#[test]
fn locks_taken_in_opposite_order_deadlock_when_the_cycle_closes() {
    let run = opposite_order(false).run();
    let Outcome::Deadlocked(waiting) = &run.outcome else {
        panic!("expected a deadlock, got {:?}", run.outcome)
    };
    assert_eq!(waiting.len(), 2);
    let deadlock = run.trace.deadlock.as_ref().expect("a recorded deadlock");
    assert_eq!(deadlock.time.as_nanos(), MS);
    assert_eq!(deadlock.cycle.len(), 2);
    let lines = sim_core::analysis::deadlock::explain(deadlock, &run.trace);
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("a waits for mutex 'm2', held by b")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("b waits for mutex 'm1', held by a")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("sync.rs:")),
        "origins: {lines:?}"
    );
}

#[test]
fn the_same_locks_in_one_order_never_deadlock() {
    let run = opposite_order(true).run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.deadlock.is_none());
    assert_eq!(run.trace.makespan().as_nanos(), 2 * MS);
}

#[test]
fn a_barging_mutex_lets_the_releaser_take_it_again() {
    // One CPU and 1ms slices: polite gets to wait for the lock at 1ms.
    let build = |fair: bool, cpus: u16| {
        let machine = sim_core::Machine {
            quantum: ms(1),
            ..textbook(cpus, SchedulerKind::RoundRobin)
        };
        let mut s = Simulation::new(machine).unwrap();
        let m = s.mutex(
            "m",
            MutexOptions {
                fair,
                inherit: false,
            },
        );
        s.add_thread("greedy", move |ctx| {
            for _ in 0..3 {
                ctx.lock(m);
                ctx.compute(ms(10));
                ctx.unlock(m);
            }
        });
        s.add_thread("polite", move |ctx| {
            ctx.lock(m);
            ctx.compute(ms(1));
            ctx.unlock(m);
        });
        s.run().stats()
    };
    let fair = build(true, 1);
    assert_eq!(end_ns(&fair, "polite"), 11 * MS);
    assert_eq!(end_ns(&fair, "greedy"), 31 * MS);
    let barging = build(false, 1);
    // greedy re-takes the lock before polite, woken, gets a CPU to retry.
    assert_eq!(end_ns(&barging, "greedy"), 30 * MS);
    assert_eq!(end_ns(&barging, "polite"), 31 * MS);
    // On two CPUs the woken polite retries on its own CPU in the same
    // instant as greedy's next lock; round-robin by CPU, greedy's unlock,
    // then polite's retry, then greedy's lock: polite wins the race.
    let parallel = build(false, 2);
    assert_eq!(end_ns(&parallel, "polite"), 11 * MS);
    assert_eq!(end_ns(&parallel, "greedy"), 31 * MS);
}

/// low holds the bus; high waits for it; medium runs in between.
fn inversion(inherit: bool) -> sim_core::Stats {
    let mut s = sim(1, SchedulerKind::Priority);
    let bus = s.mutex(
        "bus",
        MutexOptions {
            fair: true,
            inherit,
        },
    );
    let with = |priority| ThreadOptions { priority, nice: 0 };
    s.add_thread_with("low", with(1), move |ctx| {
        ctx.lock(bus);
        ctx.compute(ms(10));
        ctx.unlock(bus);
    });
    s.add_thread_with("high", with(10), move |ctx| {
        ctx.sleep(ms(1));
        ctx.lock(bus);
        ctx.compute(ms(1));
        ctx.unlock(bus);
    });
    s.add_thread_with("medium", with(5), move |ctx| {
        ctx.sleep(ms(2));
        ctx.compute(ms(20));
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    run.stats()
}

#[test]
fn without_inheritance_medium_delays_high() {
    let stats = inversion(false);
    assert_eq!(end_ns(&stats, "medium"), 22 * MS);
    assert_eq!(end_ns(&stats, "high"), 31 * MS);
    assert_eq!(end_ns(&stats, "low"), 31 * MS);
}

#[test]
fn with_inheritance_low_runs_at_high_priority_until_it_unlocks() {
    let stats = inversion(true);
    assert_eq!(end_ns(&stats, "high"), 11 * MS);
    assert_eq!(end_ns(&stats, "medium"), 31 * MS);
    assert_eq!(end_ns(&stats, "low"), 31 * MS);
}

#[test]
fn a_semaphore_admits_as_many_as_it_has_permits() {
    let mut s = sim(3, SchedulerKind::RoundRobin);
    let sem = s.semaphore("club", 2);
    for name in ["a", "b", "c"] {
        s.add_thread(name, move |ctx| {
            ctx.acquire(sem);
            ctx.compute(ms(10));
            ctx.release(sem);
        });
    }
    let stats = s.run().stats();
    assert_eq!(end_ns(&stats, "a"), 10 * MS);
    assert_eq!(end_ns(&stats, "b"), 10 * MS);
    assert_eq!(end_ns(&stats, "c"), 20 * MS);
    assert_eq!(
        stats
            .thread("c")
            .unwrap()
            .blocked_on(BlockKind::Semaphore)
            .as_nanos(),
        10 * MS
    );
}

#[test]
fn a_notify_with_no_waiter_is_lost_and_the_run_stalls() {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let m = s.mutex("m", MutexOptions::default());
    let cv = s.condvar("ready");
    s.add_thread("waiter", move |ctx| {
        ctx.sleep(ms(1));
        ctx.lock(m);
        ctx.wait(cv, m);
        ctx.unlock(m);
    });
    s.add_thread("notifier", move |ctx| ctx.notify_one(cv));
    let run = s.run();
    let Outcome::Stalled(waiting) = &run.outcome else {
        panic!("expected a stall, got {:?}", run.outcome)
    };
    assert_eq!(waiting.len(), 1);
    assert!(matches!(
        waiting[0].state,
        ThreadState::Blocked(sim_core::BlockReason::Condvar(_))
    ));
    assert!(run
        .trace
        .sync
        .iter()
        .any(|e| e.action == SyncAction::Notified { woke: 0 }));
}

#[test]
fn a_condvar_wakes_the_waiter_which_takes_the_mutex_back() {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let m = s.mutex("m", MutexOptions::default());
    let cv = s.condvar("ready");
    s.add_thread("waiter", move |ctx| {
        ctx.lock(m);
        ctx.wait(cv, m);
        ctx.compute(ms(1));
        ctx.unlock(m);
        ctx.now()
    });
    s.add_thread("notifier", move |ctx| {
        ctx.sleep(ms(2));
        ctx.lock(m);
        ctx.notify_one(cv);
        ctx.compute(ms(3));
        ctx.unlock(m);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // The waiter needs the mutex back: it gets it when the notifier unlocks at 5ms.
    assert_eq!(end_ns(&run.stats(), "waiter"), 6 * MS);
}

#[test]
fn a_condvar_waiter_on_a_barging_mutex_races_for_it_and_returns_holding_it() {
    // Issue 19, bug 1: the barging unlock woke the waiter with a retry that
    // `wait` ignored, so it returned without the mutex.
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let m = s.mutex(
        "m",
        MutexOptions {
            fair: false,
            inherit: false,
        },
    );
    let cv = s.condvar("cv");
    let ready = s.variable(sim_core::ProcessId::MAIN, "ready", 0);
    s.add_thread("waiter", move |ctx| {
        ctx.lock(m);
        while ctx.load(ready) == 0 {
            ctx.wait(cv, m);
        }
        ctx.compute(ms(1));
        ctx.unlock(m);
    });
    s.add_thread("notifier", move |ctx| {
        ctx.sleep(ms(1));
        ctx.lock(m);
        ctx.store(ready, 1);
        ctx.notify_one(cv);
        ctx.compute(ms(2));
        ctx.unlock(m);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "{:#?}", run.trace.races);
    // Notified at 1ms, it takes the mutex when the notifier frees it at 3ms.
    assert_eq!(end_ns(&run.stats(), "waiter"), 4 * MS);
    let waiter = run.trace.thread_named("waiter").unwrap();
    let retook = run
        .trace
        .sync
        .iter()
        .rev()
        .find(|e| e.thread == waiter && matches!(e.action, SyncAction::Acquired { .. }));
    assert!(
        matches!(retook.map(|e| e.action), Some(SyncAction::Acquired { waited, .. }) if waited == ms(2)),
        "{retook:?}"
    );
}

#[test]
fn a_bounded_channel_blocks_the_sender_when_full() {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let ch = s.channel::<u32>("pipe", 1);
    s.add_thread("producer", move |ctx| {
        for i in 0..3 {
            ctx.send(ch, i);
        }
        ctx.now()
    });
    let consumer = s.add_thread("consumer", move |ctx| {
        let mut got = Vec::new();
        for _ in 0..3 {
            ctx.compute(ms(1));
            got.push(ctx.recv(ch));
        }
        got
    });
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.take_value(&consumer), Some(vec![0, 1, 2]));
    // Capacity 1: the third send waits until the second receive at 2ms.
    assert_eq!(end_ns(&run.stats(), "producer"), 2 * MS);
}

#[test]
fn a_barrier_releases_everyone_when_the_last_arrives() {
    let mut s = sim(3, SchedulerKind::RoundRobin);
    let b = s.barrier("phase", 3);
    for (name, work) in [("a", 1), ("b", 2), ("c", 3)] {
        s.add_thread(name, move |ctx| {
            ctx.compute(ms(work));
            ctx.barrier_wait(b);
            ctx.compute(ms(1));
        });
    }
    let stats = s.run().stats();
    for name in ["a", "b", "c"] {
        assert_eq!(end_ns(&stats, name), 4 * MS, "{name}");
    }
}

#[test]
fn reader_preference_starves_a_writer_that_writer_preference_lets_in() {
    let build = |prefer| {
        let mut s = sim(3, SchedulerKind::RoundRobin);
        let rw = s.rwlock("table", prefer);
        // Two readers whose holds overlap, over and over.
        for (name, offset) in [("r1", 0), ("r2", 2)] {
            s.add_thread(name, move |ctx| {
                ctx.sleep(ms(offset));
                for _ in 0..5 {
                    ctx.read_lock(rw);
                    ctx.compute(ms(4));
                    ctx.read_unlock(rw);
                }
            });
        }
        s.add_thread("writer", move |ctx| {
            ctx.sleep(ms(1));
            ctx.write_lock(rw);
            ctx.compute(ms(1));
            ctx.write_unlock(rw);
        });
        s.run().stats()
    };
    let readers = build(RwPrefer::Readers);
    assert_eq!(end_ns(&readers, "writer"), 23 * MS);
    let writers = build(RwPrefer::Writers);
    assert_eq!(end_ns(&writers, "writer"), 5 * MS);
}

#[test]
fn a_spinlock_waiter_keeps_its_cpu_spinning() {
    let mut s = sim(2, SchedulerKind::RoundRobin);
    let l = s.spinlock("sl");
    s.add_thread("holder", move |ctx| {
        ctx.lock(l);
        ctx.compute(ms(5));
        ctx.unlock(l);
    });
    s.add_thread("spinner", move |ctx| {
        ctx.lock(l);
        ctx.compute(ms(1));
        ctx.unlock(l);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    assert_eq!(stats.thread("spinner").unwrap().spin.as_nanos(), 5 * MS);
    assert_eq!(end_ns(&stats, "spinner"), 6 * MS);
    assert_eq!(stats.cpus[1].busy.as_nanos(), 6 * MS);
}

#[test]
fn unlock_by_a_non_owner_and_relock_are_misuse() {
    let mut s = sim(1, SchedulerKind::RoundRobin);
    let m = s.mutex("m", MutexOptions::default());
    s.add_thread("a", move |ctx| ctx.unlock(m));
    let run = s.run();
    assert!(matches!(
        run.error(),
        Some(SimError::Misuse {
            misuse: Misuse::NotOwner { .. },
            ..
        })
    ));
    let mut s = sim(1, SchedulerKind::RoundRobin);
    let m = s.mutex("m", MutexOptions::default());
    s.add_thread("a", move |ctx| {
        ctx.lock(m);
        ctx.lock(m);
    });
    let run = s.run();
    let error = run.error().expect("a misuse").to_string();
    assert!(error.contains("already held by this thread"), "{error}");
    assert!(error.contains("sync.rs:"), "names the line: {error}");
}

/// A random program: each thread takes two of three locks in a random
/// order with some compute between.
#[derive(Clone, Debug)]
struct LockProgram {
    cpus: u16,
    threads: Vec<(usize, usize, u64)>,
}

fn lock_program() -> impl Strategy<Value = LockProgram> {
    (
        1u16..3,
        prop::collection::vec((0usize..3, 0usize..3, 0u64..3), 2..5),
    )
        .prop_map(|(cpus, threads)| LockProgram { cpus, threads })
}

fn run_program(p: &LockProgram, chooser: Box<dyn sim_core::kernel::Chooser>) -> sim_core::Run {
    let mut s = sim(p.cpus, SchedulerKind::RoundRobin);
    s.set_chooser(chooser);
    let locks: Vec<_> = (0..3)
        .map(|i| s.mutex(&format!("m{i}"), MutexOptions::default()))
        .collect();
    for (i, &(first, second, work)) in p.threads.iter().enumerate() {
        let (a, b) = (locks[first], locks[second]);
        s.add_thread(&format!("t{i}"), move |ctx| {
            ctx.lock(a);
            ctx.compute(ms(work));
            if b != a {
                ctx.lock(b);
                ctx.unlock(b);
            }
            ctx.unlock(a);
        });
    }
    s.run()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random lock programs finish, or deadlock with a real cycle; the run
    /// replays exactly.
    #[test]
    fn random_lock_programs_finish_or_deadlock_on_a_real_cycle(p in lock_program(), seed in 0u64..500) {
        let run = run_program(&p, Box::new(RandomChooser::new(seed)));
        match &run.outcome {
            Outcome::Completed => prop_assert!(run.trace.deadlock.is_none()),
            Outcome::Deadlocked(_) => {
                let deadlock = run.trace.deadlock.as_ref().unwrap();
                prop_assert!(deadlock.cycle.len() >= 2);
                // Each step's thread really waits for a lock held by the next.
                for (i, step) in deadlock.cycle.iter().enumerate() {
                    let next = &deadlock.cycle[(i + 1) % deadlock.cycle.len()];
                    let sim_core::WaitTarget::Resource(r) = step.target else {
                        panic!("lock programs only wait on locks")
                    };
                    let waiting_state = run.trace.states.last_of(step.thread).unwrap().state();
                    prop_assert_eq!(waiting_state, ThreadState::Blocked(sim_core::BlockReason::Lock(r)));
                    // The next thread acquired r and never released it.
                    let held = run.trace.sync.iter().filter(|e| e.resource == r && e.thread == next.thread)
                        .fold(0i32, |n, e| match e.action {
                            SyncAction::Acquired { .. } => n + 1,
                            SyncAction::Released => n - 1,
                            _ => n,
                        });
                    prop_assert_eq!(held, 1);
                }
            }
            other => prop_assert!(false, "unexpected outcome {:?}", other),
        }
        let replayed = run_program(&p, Box::new(ReplayChooser::new(run.decisions.clone())));
        prop_assert_eq!(&replayed.trace, &run.trace);
    }
}
