//! The primitives of Python's `threading` beyond locks and plain
//! semaphores: reentrant locks, semaphore timeouts and bounds, condition
//! timeouts, events and countdowns. Hand-computed timings, happens-before
//! edges (no race reported where the primitive orders the accesses),
//! wait-for edges where an owner exists, misuse.

use sim_core::{
    ms, BlockKind, Misuse, Outcome, ProcessId, ResourceKind, SchedulerKind, SimError, Simulation,
    SyncAction,
};

use crate::{end_ns, textbook};

const MS: u64 = 1_000_000;

fn sim(cpus: u16) -> Simulation {
    Simulation::new(textbook(cpus, SchedulerKind::RoundRobin)).unwrap()
}

fn acquisitions(run: &sim_core::Run) -> Vec<(String, u64)> {
    run.trace
        .sync
        .iter()
        .filter_map(|e| match e.action {
            SyncAction::Acquired { waited, .. } => Some((
                run.trace.threads[e.thread.index()].name.clone(),
                waited.as_nanos(),
            )),
            _ => None,
        })
        .collect()
}

// ----- reentrant lock --------------------------------------------------------

#[test]
fn an_rlock_is_free_once_unlocked_as_many_times_as_locked() {
    let mut s = sim(2);
    let r = s.rlock("r");
    s.add_thread("a", move |ctx| {
        ctx.lock(r);
        ctx.lock(r);
        assert!(ctx.try_lock(r));
        ctx.compute(ms(2));
        ctx.unlock(r);
        ctx.unlock(r);
        ctx.compute(ms(3));
        ctx.unlock(r);
    });
    s.add_thread("b", move |ctx| {
        ctx.lock(r);
        ctx.compute(ms(1));
        ctx.unlock(r);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    // b waits until a's third unlock at 5ms, then holds it 1ms.
    assert_eq!(end_ns(&stats, "b"), 6 * MS);
    assert_eq!(
        stats
            .thread("b")
            .unwrap()
            .blocked_on(BlockKind::Lock)
            .as_nanos(),
        5 * MS
    );
    // Taking it again is no acquisition.
    assert_eq!(
        acquisitions(&run),
        [("a".to_string(), 0), ("b".to_string(), 5 * MS)]
    );
    let locks = sim_core::LockStats::from_trace(&run.trace);
    let r = locks.resource("r").unwrap();
    assert_eq!(
        (r.kind, r.acquisitions, r.contended),
        (ResourceKind::RLock, 2, 1)
    );
    assert_eq!(r.max_hold.as_nanos(), 5 * MS);
}

#[test]
fn rlocks_taken_in_opposite_order_deadlock_and_the_cycle_names_them() {
    let mut s = sim(2);
    let (r1, r2) = (s.rlock("r1"), s.rlock("r2"));
    for (name, first, second) in [("a", r1, r2), ("b", r2, r1)] {
        s.add_thread(name, move |ctx| {
            ctx.lock(first);
            ctx.lock(first);
            ctx.compute(ms(1));
            ctx.lock(second);
        });
    }
    let run = s.run();
    assert!(
        matches!(run.outcome, Outcome::Deadlocked(_)),
        "{:?}",
        run.outcome
    );
    let deadlock = run.trace.deadlock.as_ref().unwrap();
    let lines = sim_core::analysis::deadlock::explain(deadlock, &run.trace);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("a waits for rlock 'r2', held by b")),
        "{lines:?}"
    );
}

#[test]
fn an_rlock_unlocked_by_another_thread_is_misuse() {
    let mut s = sim(1);
    let r = s.rlock("r");
    s.add_thread("a", move |ctx| {
        ctx.lock(r);
        ctx.sleep(ms(5));
    });
    s.add_thread("b", move |ctx| ctx.unlock(r));
    let run = s.run();
    assert!(
        matches!(
            run.error(),
            Some(SimError::Misuse {
                misuse: Misuse::NotOwner { .. },
                ..
            })
        ),
        "{:?}",
        run.outcome
    );
}

#[test]
fn an_rlock_orders_the_accesses_it_guards() {
    let mut s = sim(2);
    let r = s.rlock("r");
    let x = s.variable(ProcessId::MAIN, "x", 0);
    for name in ["a", "b"] {
        s.add_thread(name, move |ctx| {
            ctx.lock(r);
            ctx.lock(r);
            let v = ctx.load(x);
            ctx.store(x, v + 1);
            ctx.unlock(r);
            ctx.unlock(r);
        });
    }
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "{:?}", run.trace.races);
    assert_eq!(run.trace.variables[0].value, 2);
}

// ----- semaphore: try_acquire, acquire(timeout), value, bounded ---------------

#[test]
fn a_timed_acquire_gives_up_at_its_timeout_and_gets_a_permit_released_before() {
    let mut s = sim(3);
    let sem = s.semaphore("sem", 1);
    s.add_thread("holder", move |ctx| {
        ctx.acquire(sem);
        ctx.compute(ms(5));
        ctx.release(sem);
    });
    s.add_thread("impatient", move |ctx| {
        assert!(!ctx.try_acquire(sem));
        assert_eq!(ctx.permits(sem), 0);
        assert!(!ctx.acquire_timeout(sem, ms(2)));
        assert_eq!(ctx.now().as_nanos(), 2 * MS);
    });
    s.add_thread("patient", move |ctx| {
        assert!(ctx.acquire_timeout(sem, ms(10)));
        assert_eq!(ctx.now().as_nanos(), 5 * MS);
        ctx.release(sem);
        assert_eq!(ctx.permits(sem), 1);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // The one that gave up made no acquisition; the patient one waited 5ms.
    assert_eq!(
        acquisitions(&run),
        [("holder".to_string(), 0), ("patient".to_string(), 5 * MS)]
    );
    let stats = run.stats();
    assert_eq!(
        stats
            .thread("impatient")
            .unwrap()
            .blocked_on(BlockKind::Semaphore)
            .as_nanos(),
        2 * MS
    );
}

#[test]
fn a_bounded_semaphore_refuses_a_release_past_its_permits() {
    let mut s = sim(1);
    let sem = s.bounded_semaphore("pool", 2);
    s.add_thread("a", move |ctx| {
        ctx.acquire(sem);
        ctx.release(sem);
        ctx.release(sem);
    });
    let run = s.run();
    let error = run.error().expect("a misuse").to_string();
    assert!(
        error.contains("bounded semaphore 'pool' already has all its 2 permit(s)"),
        "{error}"
    );
    assert!(error.contains("threading.rs:"), "names the line: {error}");
    // A plain semaphore takes it: its count just grows.
    let mut s = sim(1);
    let sem = s.semaphore("pool", 2);
    s.add_thread("a", move |ctx| {
        ctx.release(sem);
        assert_eq!(ctx.permits(sem), 3);
    });
    assert!(s.run().completed());
}

#[test]
fn a_semaphore_release_orders_the_acquirers_accesses() {
    let mut s = sim(2);
    let sem = s.semaphore("done", 0);
    let x = s.variable(ProcessId::MAIN, "x", 0);
    s.add_thread("writer", move |ctx| {
        ctx.compute(ms(1));
        ctx.store(x, 1);
        ctx.release(sem);
    });
    s.add_thread("reader", move |ctx| {
        assert!(ctx.acquire_timeout(sem, ms(5)));
        assert_eq!(ctx.load(x), 1);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "{:?}", run.trace.races);
}

// ----- condition variable: wait(m, timeout) -----------------------------------

#[test]
fn a_timed_condvar_wait_times_out_and_still_returns_holding_the_mutex() {
    let mut s = sim(2);
    let m = s.mutex("m", sim_core::MutexOptions::default());
    let cv = s.condvar("cv");
    s.add_thread("waiter", move |ctx| {
        ctx.lock(m);
        let notified = ctx.wait_timeout(cv, m, ms(2));
        assert!(!notified);
        // It holds the mutex again: at 3ms, when the holder let it go.
        assert_eq!(ctx.now().as_nanos(), 3 * MS);
        ctx.unlock(m);
    });
    s.add_thread("holder", move |ctx| {
        ctx.compute(ms(1));
        ctx.lock(m);
        ctx.compute(ms(2));
        ctx.unlock(m);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
}

#[test]
fn a_notified_timed_wait_returns_true_and_its_timer_is_forgotten() {
    let mut s = sim(2);
    let m = s.mutex("m", sim_core::MutexOptions::default());
    let cv = s.condvar("cv");
    let x = s.variable(ProcessId::MAIN, "x", 0);
    s.add_thread("waiter", move |ctx| {
        ctx.lock(m);
        assert!(ctx.wait_timeout(cv, m, ms(5)));
        assert_eq!(ctx.load(x), 1);
        // Notified at 1ms, it takes the mutex back at 4ms, when the
        // notifier unlocks: its 5ms timer, past by then, does not fire.
        assert_eq!(ctx.now().as_nanos(), 4 * MS);
        ctx.unlock(m);
        ctx.sleep(ms(10));
    });
    s.add_thread("notifier", move |ctx| {
        ctx.compute(ms(1));
        ctx.lock(m);
        ctx.store(x, 1);
        ctx.notify_one(cv);
        ctx.compute(ms(3));
        ctx.unlock(m);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "{:?}", run.trace.races);
    assert_eq!(end_ns(&run.stats(), "waiter"), 14 * MS);
}

// ----- event ------------------------------------------------------------------

#[test]
fn an_event_releases_every_waiter_when_set_and_stays_set_until_cleared() {
    let mut s = sim(4);
    let ev = s.event("ready");
    let data = s.variable(ProcessId::MAIN, "data", 0);
    for name in ["w1", "w2"] {
        s.add_thread(name, move |ctx| {
            ctx.wait_event(ev);
            assert_eq!(ctx.load(data), 7);
            assert_eq!(ctx.now().as_nanos(), 2 * MS);
        });
    }
    s.add_thread("late", move |ctx| {
        ctx.sleep(ms(3));
        // Set already: no wait.
        assert!(ctx.is_set(ev));
        ctx.wait_event(ev);
        assert_eq!(ctx.now().as_nanos(), 3 * MS);
        ctx.clear(ev);
        assert!(!ctx.wait_event_timeout(ev, ms(1)));
        assert_eq!(ctx.now().as_nanos(), 4 * MS);
    });
    s.add_thread("setter", move |ctx| {
        ctx.compute(ms(2));
        ctx.store(data, 7);
        ctx.set(ev);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    // The set orders the setter's store before the waiters' loads.
    assert!(run.trace.races.is_empty(), "{:?}", run.trace.races);
    let stats = sim_core::LockStats::from_trace(&run.trace);
    let r = stats.resource("ready").unwrap();
    assert_eq!((r.kind, r.notifies), (ResourceKind::Event, 1));
    assert_eq!(
        (r.acquisitions, r.contended, r.max_wait.as_nanos()),
        (3, 2, 2 * MS)
    );
    assert!(stats
        .to_string()
        .contains("sets 1, waits 3 (2 blocked, max 2ms)"));
    let blocked = run.stats();
    assert_eq!(
        blocked
            .thread("late")
            .unwrap()
            .blocked_on(BlockKind::Event)
            .as_nanos(),
        MS
    );
}

#[test]
fn an_event_never_set_is_a_stall_not_a_deadlock() {
    let mut s = sim(1);
    let ev = s.event("never");
    s.add_thread("waiter", move |ctx| ctx.wait_event(ev));
    let run = s.run();
    let Outcome::Stalled(waiting) = &run.outcome else {
        panic!("{:?}", run.outcome)
    };
    let what = sim_core::analysis::deadlock::describe_state(&run.trace, waiting[0].state);
    assert_eq!(what, "event 'never'");
}

// ----- countdown --------------------------------------------------------------

#[test]
fn a_countdown_opens_at_its_last_signal_with_every_signallers_past() {
    let mut s = sim(4);
    let done = s.countdown("done", 3);
    let results: Vec<_> = (0..3)
        .map(|i| s.variable(ProcessId::MAIN, &format!("r{i}"), 0))
        .collect();
    for (i, &r) in results.iter().enumerate() {
        s.add_thread(&format!("worker{i}"), move |ctx| {
            ctx.compute(ms(i as u64 + 1));
            ctx.store(r, 1);
            ctx.signal(done);
        });
    }
    s.add_thread("main", move |ctx| {
        ctx.wait_countdown(done);
        assert_eq!(ctx.now().as_nanos(), 3 * MS);
        for &r in &results {
            assert_eq!(ctx.load(r), 1);
        }
        // Open now: a wait returns at once.
        ctx.wait_countdown(done);
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert!(run.trace.races.is_empty(), "{:?}", run.trace.races);
    let stats = sim_core::LockStats::from_trace(&run.trace);
    let r = stats.resource("done").unwrap();
    assert_eq!(
        (r.kind, r.notifies, r.acquisitions, r.contended),
        (ResourceKind::Countdown, 3, 2, 1)
    );
    assert_eq!(
        run.stats()
            .thread("main")
            .unwrap()
            .blocked_on(BlockKind::Countdown)
            .as_nanos(),
        3 * MS
    );
}

#[test]
fn a_countdown_signalled_past_zero_is_misuse_and_one_short_stalls() {
    let mut s = sim(1);
    let done = s.countdown("done", 1);
    s.add_thread("a", move |ctx| {
        ctx.signal(done);
        ctx.signal(done);
    });
    let error = s.run().error().expect("a misuse").to_string();
    assert!(
        error.contains("countdown 'done' already reached zero"),
        "{error}"
    );
    let mut s = sim(1);
    let done = s.countdown("done", 2);
    s.add_thread("a", move |ctx| ctx.signal(done));
    s.add_thread("b", move |ctx| ctx.wait_countdown(done));
    let run = s.run();
    assert!(
        matches!(run.outcome, Outcome::Stalled(_)),
        "{:?}",
        run.outcome
    );
}
