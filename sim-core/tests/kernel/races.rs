//! Data-race detection through the kernel: unordered plain accesses are
//! reported once per pair of lines; locks, atomics, joins and channels order
//! accesses so that they are not.

use sim_core::{ms, MutexOptions, ProcessId, SchedulerKind, Simulation};

use crate::textbook;

fn two_incrementers(style: &'static str) -> sim_core::Run {
    let mut s = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    let x = s.variable(ProcessId::MAIN, "x", 0);
    let m = s.mutex("m", MutexOptions::default());
    for name in ["a", "b"] {
        s.add_thread(name, move |ctx| {
            for _ in 0..3 {
                ctx.compute(ms(1));
                match style {
                    "plain" => {
                        let v = ctx.load(x);
                        ctx.store(x, v + 1);
                    }
                    "mutex" => {
                        ctx.lock(m);
                        let v = ctx.load(x);
                        ctx.store(x, v + 1);
                        ctx.unlock(m);
                    }
                    _ => {
                        ctx.fetch_add(x, 1);
                    }
                }
            }
        });
    }
    s.run()
}

#[test]
fn unordered_increments_race_once_per_pair_of_lines() {
    let run = two_incrementers("plain");
    // load-store and store-store pairs between the two threads, each once.
    assert_eq!(run.trace.races.len(), 2, "{:#?}", run.trace.races);
    for race in &run.trace.races {
        assert_ne!(race.first.thread, race.second.thread);
        assert!(race.first.time <= race.second.time);
    }
}

#[test]
fn a_mutex_or_an_atomic_removes_the_race() {
    assert!(two_incrementers("mutex").trace.races.is_empty());
    let run = two_incrementers("atomic");
    assert!(run.trace.races.is_empty());
    assert_eq!(run.trace.variables[0].value, 6);
}

#[test]
fn start_join_and_channels_order_accesses() {
    let mut s = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    let x = s.variable(ProcessId::MAIN, "x", 0);
    let ch = s.channel::<()>("ch", 1);
    s.add_thread("parent", move |ctx| {
        ctx.store(x, 1);
        let child = ctx.start_thread("child", move |ctx| {
            let v = ctx.load(x);
            ctx.store(x, v + 1);
        });
        ctx.join(child);
        ctx.store(x, 10);
        ctx.send(ch, ());
    });
    s.add_thread("reader", move |ctx| {
        ctx.recv(ch);
        ctx.load(x)
    });
    let run = s.run();
    assert!(run.completed());
    assert!(run.trace.races.is_empty(), "{:#?}", run.trace.races);
}
