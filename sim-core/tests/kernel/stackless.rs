//! Stackless threads (`add_stackless_thread`): the same operations give the
//! same run as stackful threads, and the kernel's checks see them alike.

use sim_core::{
    ms, us, Machine, MutexOptions, Outcome, ProcessId, SchedulerKind, Simulation, Spinlock,
};

use crate::textbook;

/// `n` threads on `cpus` CPUs, each `cycles` times: lock a shared mutex,
/// read and write a shared variable, compute, unlock, sleep; stackless or
/// not. Machine costs (switches, spawns) are the defaults, so that every
/// kind of event happens.
fn cycles(stackless: bool, n: usize, cycles: usize, locked: bool) -> sim_core::Run {
    let machine = Machine {
        cpus: 2,
        ..Machine::default()
    };
    let mut s = Simulation::new(machine).unwrap();
    let x = s.variable(ProcessId::MAIN, "x", 0);
    let m = s.mutex("m", MutexOptions::default());
    for i in 0..n {
        let name = format!("t{i}");
        if stackless {
            s.add_stackless_thread(&name, move |ctx| async move {
                for _ in 0..cycles {
                    if locked {
                        ctx.lock(m).await;
                    }
                    let v = ctx.load(x).await;
                    ctx.store(x, v + 1).await;
                    ctx.compute(us(3)).await;
                    if locked {
                        ctx.unlock(m).await;
                    }
                    ctx.sleep(us(2)).await;
                }
            });
        } else {
            s.add_thread(&name, move |ctx| {
                for _ in 0..cycles {
                    if locked {
                        ctx.lock(m);
                    }
                    let v = ctx.load(x);
                    ctx.store(x, v + 1);
                    ctx.compute(us(3));
                    if locked {
                        ctx.unlock(m);
                    }
                    ctx.sleep(us(2));
                }
            });
        }
    }
    s.run()
}

/// Both runs completed with the same states at the same times on the same
/// CPUs, the same synchronisation events (lock hand-overs, sends,
/// notifications) and the same printed lines.
fn assert_same_run(stackful: &sim_core::Run, stackless: &sim_core::Run) {
    assert!(stackful.completed(), "{:?}", stackful.outcome);
    assert!(stackless.completed(), "{:?}", stackless.outcome);
    let states = |run: &sim_core::Run| -> Vec<String> {
        run.trace.states.iter().map(|c| format!("{c:?}")).collect()
    };
    assert_eq!(states(stackful), states(stackless));
    assert_eq!(
        format!("{:?}", stackful.trace.sync),
        format!("{:?}", stackless.trace.sync)
    );
    assert_eq!(
        format!("{:?}", stackful.trace.logs),
        format!("{:?}", stackless.trace.logs)
    );
}

#[test]
fn a_stackless_thread_runs_exactly_as_a_stackful_one() {
    let stackful = cycles(false, 5, 20, true);
    let stackless = cycles(true, 5, 20, true);
    assert_same_run(&stackful, &stackless);
    assert_eq!(stackless.trace.variables[0].value, 100);
    assert!(stackless.trace.races.is_empty());
    assert_eq!(stackful.trace.makespan(), stackless.trace.makespan());
}

#[test]
fn unlocked_stackless_increments_race_at_the_lines_that_wrote_them() {
    let run = cycles(true, 2, 3, false);
    assert_eq!(run.trace.races.len(), 2, "{:#?}", run.trace.races);
    // The positions are this file's lines, as for a stackful thread.
    let origin = run.trace.races[0].second.origin.expect("a position");
    let origin = &run.trace.origins[origin.index()];
    assert!(format!("{origin:?}").contains("stackless.rs"), "{origin:?}");
}

#[test]
fn two_stackless_threads_that_lock_in_opposite_orders_deadlock() {
    let mut s = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    let a = s.mutex("a", MutexOptions::default());
    let b = s.mutex("b", MutexOptions::default());
    for (name, first, second) in [("ab", a, b), ("ba", b, a)] {
        s.add_stackless_thread(name, move |ctx| async move {
            ctx.lock(first).await;
            ctx.compute(ms(1)).await;
            ctx.lock(second).await;
            ctx.unlock(second).await;
            ctx.unlock(first).await;
        });
    }
    let run = s.run();
    assert!(
        matches!(run.outcome, Outcome::Deadlocked(_)),
        "{:?}",
        run.outcome
    );
    assert!(run.trace.deadlock.is_some());
}

#[test]
fn a_stackful_thread_joins_a_stackless_one_and_gets_its_value() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let spin = s.spinlock("s");
    let child = s.add_stackless_thread("child", move |ctx| async move {
        ctx.lock(spin).await;
        ctx.compute(ms(2)).await;
        ctx.unlock(spin).await;
        let at = ctx.now().await;
        at.as_nanos() * 10
    });
    let parent = s.add_thread("parent", move |ctx| ctx.join(child));
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let _: Spinlock = spin;
    assert_eq!(run.take_value(&parent), Some(20_000_000));
}

#[test]
fn a_panic_in_a_stackless_body_fails_the_run_with_its_message() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("panics", |ctx| async move {
        ctx.compute(ms(1)).await;
        panic!("out of cheese");
    });
    let run = s.run();
    let Outcome::Failed(error) = &run.outcome else {
        panic!("a failed run: {:?}", run.outcome)
    };
    let text = error.to_string();
    assert!(text.contains("out of cheese"), "{text}");
}

#[test]
fn a_stackless_thread_that_awaits_something_else_is_told_why_it_failed() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("strays", |ctx| async move {
        ctx.compute(ms(1)).await;
        std::future::pending::<()>().await;
    });
    let run = s.run();
    let Outcome::Failed(error) = &run.outcome else {
        panic!("a failed run: {:?}", run.outcome)
    };
    let text = error.to_string();
    assert!(text.contains("only the kernel runs its future"), "{text}");
}

#[test]
fn a_barging_mutex_retries_for_a_stackless_thread_as_for_a_stackful_one() {
    let run = |stackless: bool| {
        let mut s = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
        let m = s.mutex(
            "m",
            MutexOptions {
                fair: false,
                ..MutexOptions::default()
            },
        );
        for i in 0..4 {
            let name = format!("t{i}");
            if stackless {
                s.add_stackless_thread(&name, move |ctx| async move {
                    for _ in 0..5 {
                        ctx.lock(m).await;
                        ctx.compute(ms(1)).await;
                        ctx.unlock(m).await;
                    }
                });
            } else {
                s.add_thread(&name, move |ctx| {
                    for _ in 0..5 {
                        ctx.lock(m);
                        ctx.compute(ms(1));
                        ctx.unlock(m);
                    }
                });
            }
        }
        s.run()
    };
    let (stackful, stackless) = (run(false), run(true));
    assert_same_run(&stackful, &stackless);
}

/// Two threads increment a plain variable without a lock, stackless or not.
struct Counter {
    stackless: bool,
}

impl sim_core::explore::Scenario for Counter {
    fn run(
        &mut self,
        chooser: Box<dyn sim_core::kernel::Chooser>,
        _seed: u64,
    ) -> sim_core::explore::Verdict {
        let mut s = Simulation::new(Machine::textbook()).unwrap();
        s.set_chooser(chooser);
        let x = s.variable(ProcessId::MAIN, "x", 0);
        for name in ["a", "b"] {
            if self.stackless {
                s.add_stackless_thread(name, move |ctx| async move {
                    let v = ctx.load(x).await;
                    ctx.store(x, v + 1).await;
                });
            } else {
                s.add_thread(name, move |ctx| {
                    let v = ctx.load(x);
                    ctx.store(x, v + 1);
                });
            }
        }
        let run = s.run();
        let value = run.trace.variables[0].value;
        sim_core::explore::Verdict {
            failure: (value != 2)
                .then(|| sim_core::explore::Failed::from("lost update".to_string())),
            decisions: run.decisions,
            outcome: value.to_string(),
        }
    }
}

#[test]
fn exploring_stackless_threads_finds_every_schedule_a_stackful_run_has() {
    use sim_core::explore::{explore, ExploreOptions, Strategy};
    let options = ExploreOptions {
        runs: 1000,
        strategy: Strategy::Dfs { preemptions: 2 },
        jobs: 1,
        seed: 0,
        keep_going: true,
    };
    let report = |stackless| explore(&options, move || Counter { stackless }, |_| {});
    let (stackful, stackless) = (report(false), report(true));
    assert!(stackless.exhausted);
    assert_eq!(stackless.runs, stackful.runs);
    assert_eq!(stackless.outcomes, stackful.outcomes);
    // The lost update is found, with the same replayable schedule.
    assert!(
        stackless.outcomes.contains_key("1"),
        "{:?}",
        stackless.outcomes
    );
    assert_eq!(stackless.failures.len(), stackful.failures.len());
    assert_eq!(
        stackless.failures[0].decisions,
        stackful.failures[0].decisions
    );
}

/// Every kind of operation a stackless thread has, written once for both
/// kinds of thread: `$($aw)*` is `.await` for the stackless ones.
macro_rules! every_operation {
    ($s:ident, $add:ident, $start:ident, $($aw:tt)*) => {{
        let x = $s.variable(ProcessId::MAIN, "x", 0);
        let flag = $s.variable(ProcessId::MAIN, "flag", 0);
        let m = $s.mutex("m", MutexOptions::default());
        let cv = $s.condvar("cv");
        let rw = $s.rwlock("rw", sim_core::RwPrefer::Writers);
        let ev = $s.event("ev");
        let cd = $s.countdown("cd", 2);
        let bar = $s.barrier("bar", 7);
        let m2 = $s.mutex("m2", MutexOptions::default());
        let cv2 = $s.condvar("cv2");
        let ev2 = $s.event("ev2");
        let none = $s.semaphore("none", 0);
        let ch = $s.channel::<i64>("ch", 1);
        let sem = $s.semaphore("sem", 1);
        let dev = $s.device("disk", sim_core::DeviceOptions::default());
        $add!($s, "producer", move |ctx| {
            for i in 1..=3 {
                ctx.compute(ms(1)) $($aw)*;
                ctx.send(ch, i) $($aw)*;
            }
            ctx.set(ev) $($aw)*;
            ctx.signal(cd) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "consumer", move |ctx| {
            for _ in 0..3 {
                let v = ctx.recv(ch) $($aw)*;
                ctx.fetch_add(x, v) $($aw)*;
            }
            ctx.wait_event(ev) $($aw)*;
            assert!(ctx.is_set(ev) $($aw)*);
            ctx.write_lock(rw) $($aw)*;
            ctx.compute(ms(1)) $($aw)*;
            ctx.write_unlock(rw) $($aw)*;
            ctx.wait_countdown(cd) $($aw)*;
            ctx.clear(ev) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "waiter", move |ctx| {
            ctx.lock(m) $($aw)*;
            while ctx.load(flag) $($aw)* == 0 {
                ctx.wait(cv, m) $($aw)*;
            }
            ctx.unlock(m) $($aw)*;
            ctx.io(dev, 4096) $($aw)*;
            let h = ctx.submit(dev, 100) $($aw)*;
            let _ = ctx.io_ready(h) $($aw)*;
            ctx.io_wait(h) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "notifier", move |ctx| {
            ctx.sleep(ms(2)) $($aw)*;
            ctx.lock(m) $($aw)*;
            ctx.store(flag, 1) $($aw)*;
            ctx.notify_all(cv) $($aw)*;
            ctx.notify_one(cv) $($aw)*;
            ctx.unlock(m) $($aw)*;
            ctx.read_lock(rw) $($aw)*;
            ctx.yield_now() $($aw)*;
            ctx.read_unlock(rw) $($aw)*;
            ctx.acquire(sem) $($aw)*;
            assert!(!ctx.try_acquire(sem) $($aw)*);
            ctx.release(sem) $($aw)*;
            ctx.signal(cd) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "waits_with_timeout", move |ctx| {
            ctx.lock(m) $($aw)*;
            let mut notified = false;
            while ctx.load(flag) $($aw)* == 0 {
                notified = ctx.wait_timeout(cv, m, ms(100)) $($aw)*;
            }
            assert!(notified);
            ctx.unlock(m) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "timer", move |ctx| {
            assert!(!ctx.acquire_timeout(none, ms(1)) $($aw)*);
            assert_eq!(ctx.permits(none) $($aw)*, 0);
            ctx.lock(m2) $($aw)*;
            assert!(!ctx.wait_timeout(cv2, m2, ms(1)) $($aw)*);
            ctx.unlock(m2) $($aw)*;
            assert!(!ctx.wait_event_timeout(ev2, ms(1)) $($aw)*);
            let ep = ctx.epoll() $($aw)*;
            let h = ctx.submit(dev, 200) $($aw)*;
            ctx.epoll_add(ep, h) $($aw)*;
            assert_eq!(ctx.epoll_len(ep) $($aw)*, 1);
            let ready = ctx.epoll_wait(ep, None) $($aw)*;
            assert_eq!(ready.len(), 1);
            assert!(!ctx.epoll_remove(ep, h) $($aw)*);
            ctx.barrier_wait(bar) $($aw)*;
        });
        $add!($s, "parent", move |ctx| {
            let child = $start!(ctx, "child", |c| {
                c.compute(ms(1)) $($aw)*;
                c.now() $($aw)*
            });
            let at = ctx.join(child) $($aw)*;
            ctx.fetch_add(x, at.as_nanos() as i64) $($aw)*;
            ctx.print(format!("child ended at {at}")) $($aw)*;
            ctx.barrier_wait(bar) $($aw)*;
        });
    }};
}

#[test]
fn every_operation_of_a_stackless_thread_does_what_the_stackful_one_does() {
    macro_rules! stackful {
        ($s:ident, $name:literal, $body:expr) => {
            $s.add_thread($name, $body)
        };
    }
    macro_rules! start_stackful {
        ($ctx:ident, $name:literal, $body:expr) => {
            $ctx.start_thread($name, $body)
        };
    }
    macro_rules! stackless {
        ($s:ident, $name:literal, move |$ctx:ident| $body:block) => {
            $s.add_stackless_thread($name, move |$ctx| async move { $body })
        };
    }
    macro_rules! start_stackless {
        ($ctx:ident, $name:literal, |$c:ident| $body:block) => {
            $ctx.start_thread($name, |$c| async move { $body }).await
        };
    }
    let machine = Machine {
        cpus: 2,
        ..Machine::default()
    };
    let mut a = Simulation::new(machine.clone()).unwrap();
    every_operation!(a, stackful, start_stackful,);
    let a = a.run();
    let mut b = Simulation::new(machine).unwrap();
    every_operation!(b, stackless, start_stackless, .await);
    let b = b.run();
    assert_same_run(&a, &b);
    assert_eq!(a.trace.variables[0].value, b.trace.variables[0].value);
    assert!(b.trace.variables[0].value > 6, "{:?}", b.trace.variables);
    assert!(b.trace.races.is_empty(), "{:?}", b.trace.races);
}

/// Polls two futures in one poll, as `join!` does, until both are ready.
struct Both<A, B>(Option<A>, Option<B>);

impl<A, B> std::future::Future for Both<A, B>
where
    A: std::future::Future<Output = ()> + Unpin,
    B: std::future::Future<Output = ()> + Unpin,
{
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = &mut *self;
        if let Some(a) = &mut this.0 {
            if std::pin::Pin::new(a).poll(cx).is_ready() {
                this.0 = None;
            }
        }
        if let Some(b) = &mut this.1 {
            if std::pin::Pin::new(b).poll(cx).is_ready() {
                this.1 = None;
            }
        }
        if this.0.is_none() && this.1.is_none() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[test]
fn awaiting_two_operations_at_once_fails_the_thread_and_says_why() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("joins", |ctx| async move {
        ctx.compute(ms(1)).await;
        Both(Some(ctx.sleep(ms(1))), Some(ctx.sleep(ms(2)))).await;
    });
    let run = s.run();
    let Outcome::Failed(error) = &run.outcome else {
        panic!("a failed run: {:?}", run.outcome)
    };
    let text = error.to_string();
    assert!(text.contains("two of its operations at once"), "{text}");
}

/// One asyncio scenario written once for both kinds of task: `$($aw)*` is
/// `.await` for the stackless ones.
macro_rules! every_await {
    ($s:ident, $add:ident, $start:ident, $($aw:tt)*) => {{
        let lp = $s.add_event_loop(ProcessId::MAIN, "loop", sim_core::LoopOptions::default());
        let disk = $s.device("disk", sim_core::DeviceOptions::default());
        let q = $s.channel::<i64>("q", 1);
        let pool = $s.thread_pool(ProcessId::MAIN, "pool", 1);
        $add!($s, lp, "offloader", move |t| {
            let a = t.run_in_executor(|ctx| {
                ctx.compute(ms(3));
                2i64
            }) $($aw)*;
            let b = t.run_in_pool(&pool, |ctx| {
                ctx.sleep(ms(1));
                ctx.compute(ms(1));
                3i64
            }) $($aw)*;
            let a = t.await_task(a) $($aw)*;
            let b = t.await_task(b) $($aw)*;
            t.print(format!("offloaded {}", a * b)) $($aw)*;
            a * b
        });
        $add!($s, lp, "producer", move |t| {
            for i in 0..3 {
                t.compute(us(300)) $($aw)*; // blocks the loop
                t.await_send(q, i) $($aw)*;
            }
            0i64
        });
        $add!($s, lp, "consumer", move |t| {
            let mut sum = 0;
            for _ in 0..3 {
                sum += t.await_recv(q) $($aw)*;
            }
            sum
        });
        $add!($s, lp, "fetcher", move |t| {
            t.await_io(disk, 4096) $($aw)*;
            t.await_yield() $($aw)*;
            let child = $start!(t, "child", |c| {
                c.await_sleep(ms(2)) $($aw)*;
                7i64
            });
            let got = t.await_task(child) $($aw)*;
            let all = t.gather_any(&[child.id()]) $($aw)*;
            assert!(all.is_ok());
            t.print(format!("child gave {got}")) $($aw)*;
            got
        });
    }};
}

#[test]
fn a_stackless_task_runs_exactly_as_a_stackful_one() {
    macro_rules! stackful {
        ($s:ident, $lp:ident, $name:literal, $body:expr) => {
            $s.add_task(&$lp, $name, $body)
        };
    }
    macro_rules! start_stackful {
        ($t:ident, $name:literal, $body:expr) => {
            $t.start_task($name, $body)
        };
    }
    macro_rules! stackless {
        ($s:ident, $lp:ident, $name:literal, move |$t:ident| $body:block) => {
            $s.add_stackless_task(&$lp, $name, move |$t| async move { $body })
        };
    }
    macro_rules! start_stackless {
        ($t:ident, $name:literal, |$c:ident| $body:block) => {
            $t.start_task($name, |$c| async move { $body }).await
        };
    }
    let machine = Machine {
        cpus: 2,
        ..Machine::default()
    };
    let mut a = Simulation::new(machine.clone()).unwrap();
    every_await!(a, stackful, start_stackful,);
    let a = a.run();
    let mut b = Simulation::new(machine).unwrap();
    every_await!(b, stackless, start_stackless, .await);
    let b = b.run();
    assert_same_run(&a, &b);
    assert_eq!(
        format!("{:?}", a.trace.loops),
        format!("{:?}", b.trace.loops)
    );
    assert!(b.trace.logs.iter().any(|l| l.text == "child gave 7"));
    assert!(b.trace.logs.iter().any(|l| l.text == "offloaded 6"));
}

#[test]
fn a_panic_in_a_stackless_task_fails_the_run_with_its_message() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", sim_core::LoopOptions::default());
    s.add_stackless_task(&lp, "panics", |t| async move {
        t.await_sleep(ms(1)).await;
        panic!("out of cheese");
    });
    let run = s.run();
    let text = format!("{:?}", run.outcome);
    assert!(text.contains("out of cheese"), "{text}");
}

/// Panics when polled.
struct Boom;

impl std::future::Future for Boom {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        panic!("boom")
    }
}

#[test]
fn a_body_that_panics_with_a_request_out_leaves_nothing_to_the_next_run() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("sends_then_panics", |ctx| async move {
        Both(Some(ctx.sleep(ms(1))), Some(Boom)).await;
    });
    let run = s.run();
    assert!(
        format!("{:?}", run.outcome).contains("boom"),
        "{:?}",
        run.outcome
    );
    // The next simulation on this OS thread finds the mailbox empty.
    let run = cycles(true, 3, 5, true);
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.trace.variables[0].value, 15);
}

/// Polls `first` once, then `second` alone until it is ready, then `first`
/// again: `second`'s request goes out while `first`'s answer waits untaken,
/// and `first` would then take `second`'s answer.
struct SecondFirst<A, B> {
    first: Option<A>,
    second: Option<B>,
    polls: u32,
}

impl<A, B> std::future::Future for SecondFirst<A, B>
where
    A: std::future::Future<Output = ()> + Unpin,
    B: std::future::Future<Output = ()> + Unpin,
{
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = &mut *self;
        this.polls += 1;
        let poll_first = this.polls == 1 || this.second.is_none();
        if !poll_first {
            if let Some(b) = &mut this.second {
                if std::pin::Pin::new(b).poll(cx).is_ready() {
                    this.second = None;
                }
            }
        } else if let Some(a) = &mut this.first {
            if std::pin::Pin::new(a).poll(cx).is_ready() {
                this.first = None;
            }
        }
        if this.first.is_none() && this.second.is_none() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[test]
fn an_answer_left_for_a_request_sent_after_it_fails_the_thread() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("reorders", |ctx| async move {
        SecondFirst {
            first: Some(ctx.sleep(ms(1))),
            second: Some(ctx.sleep(ms(2))),
            polls: 0,
        }
        .await;
    });
    let run = s.run();
    let text = format!("{:?}", run.outcome);
    assert!(text.contains("two of its operations at once"), "{text}");
}

/// A thread submits a pool job; a task wraps its future and awaits it
/// (`asyncio.wrap_future`), written once for both kinds of task.
macro_rules! wrapped_job {
    ($s:ident, $add:ident, $($aw:tt)*) => {{
        let pool = $s.thread_pool(ProcessId::MAIN, "pool", 1);
        let lp = $s.add_event_loop(ProcessId::MAIN, "loop", sim_core::LoopOptions::default());
        let shared: std::rc::Rc<std::cell::RefCell<Option<sim_core::PoolFuture>>> =
            Default::default();
        let submitted = shared.clone();
        $s.add_thread("submitter", move |ctx| {
            let future = pool.submit(ctx, "job", |ctx| {
                ctx.compute(ms(4));
                11i64
            });
            *submitted.borrow_mut() = Some(future.untyped().clone());
        });
        $add!($s, lp, "waiter", move |t| {
            t.await_sleep(ms(1)) $($aw)*;
            let future = shared.borrow().clone().expect("submitted by then");
            let task = t.wrap_future(&future) $($aw)*;
            let all = t.gather_any(&[task]) $($aw)*;
            let value = *all.expect("the job succeeded")[0]
                .downcast_ref::<i64>()
                .expect("an i64");
            t.print(format!("job gave {value}")) $($aw)*;
            value
        });
    }};
}

#[test]
fn a_stackless_task_awaits_a_wrapped_pool_future_as_a_stackful_one_does() {
    macro_rules! stackful {
        ($s:ident, $lp:ident, $name:literal, $body:expr) => {
            $s.add_task(&$lp, $name, $body)
        };
    }
    macro_rules! stackless {
        ($s:ident, $lp:ident, $name:literal, move |$t:ident| $body:block) => {
            $s.add_stackless_task(&$lp, $name, move |$t| async move { $body })
        };
    }
    let mut a = Simulation::new(textbook(2, SchedulerKind::Fifo)).unwrap();
    wrapped_job!(a, stackful,);
    let a = a.run();
    let mut b = Simulation::new(textbook(2, SchedulerKind::Fifo)).unwrap();
    wrapped_job!(b, stackless, .await);
    let b = b.run();
    assert!(a.completed(), "{:?}", a.outcome);
    assert_same_run(&a, &b);
    assert!(b.trace.logs.iter().any(|l| l.text == "job gave 11"));
}

#[test]
fn a_stackless_thread_starts_a_process_as_a_stackful_one_does() {
    use sim_core::kernel::{ProcessStart, StartMethod};
    use sim_core::{ProcessOptions, ThreadOptions};
    fn start() -> ProcessStart {
        ProcessStart {
            gil: Some(ms(5)),
            spawn_cost: StartMethod::Fork.cost(),
        }
    }
    let scenario = |stackless: bool| {
        let mut sim = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
        let py = sim.add_process("python", ProcessOptions::python(ms(5)));
        if stackless {
            sim.add_stackless_thread_to(py, "parent", ThreadOptions::default(), |ctx| async move {
                let (child, main) = ctx
                    .start_process("worker", start(), |ctx| async move {
                        ctx.compute(ms(10)).await;
                        7u32
                    })
                    .await;
                ctx.compute(ms(10)).await;
                let value: u32 = ctx.join(main).await;
                ctx.print(format!("worker {} gave {value}", child.process.index()))
                    .await;
            });
        } else {
            sim.add_thread_to(py, "parent", ThreadOptions::default(), |ctx| {
                let child = ctx.start_process("worker", start(), |ctx| {
                    ctx.compute(ms(10));
                    Ok(Box::new(7u32) as Box<dyn std::any::Any>)
                });
                ctx.compute(ms(10));
                let value = *ctx.join_any(child.main).downcast::<u32>().unwrap();
                ctx.print(format!("worker {} gave {value}", child.process.index()));
            });
        }
        sim.run()
    };
    let (a, b) = (scenario(false), scenario(true));
    assert!(a.completed(), "{:?}", a.outcome);
    assert_same_run(&a, &b);
    assert!(b.trace.logs.iter().any(|l| l.text == "worker 2 gave 7"));
    // The child spent its fork cost (2ms) spawning, then 10ms on the other
    // CPU under its own GIL.
    let worker = b.trace.thread_named("worker").unwrap();
    let done = b
        .trace
        .states
        .iter()
        .filter(|c| c.thread() == worker)
        .last();
    assert_eq!(done.map(|c| c.time()), Some(sim_core::Time(12 * 1_000_000)));
}

#[test]
fn operations_polled_on_another_os_thread_with_the_kernels_waker_answer_nothing() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    s.add_stackless_thread("lends", |ctx| async move {
        ctx.compute(ms(1)).await;
        // A body that lends its poll's waker to other OS threads: their
        // operations must not reach this poll's mailbox.
        std::future::poll_fn(|cx| {
            let waker = cx.waker();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(move || {
                        let mut op = std::pin::pin!(ctx.now());
                        let mut cx = std::task::Context::from_waker(waker);
                        let polled = std::future::Future::poll(op.as_mut(), &mut cx);
                        assert!(polled.is_pending());
                    });
                }
            });
            std::task::Poll::Ready(())
        })
        .await;
        ctx.sleep(ms(1)).await;
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.trace.makespan().as_nanos(), ms(2).as_nanos());
}

/// Polls a future inside `catch_unwind`: `Err` when it panicked.
struct CatchUnwind<F>(F);

impl<F: std::future::Future + Unpin> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(inner).poll(cx)
        })) {
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

#[test]
fn a_task_that_catches_the_panic_of_an_await_goes_on_to_its_next_operation() {
    let mut s = Simulation::new(textbook(1, SchedulerKind::Fifo)).unwrap();
    let lp = s.add_event_loop(ProcessId::MAIN, "loop", sim_core::LoopOptions::default());
    s.add_stackless_task(&lp, "parent", |t| async move {
        let child = t
            .start_task("child", |c| async move {
                c.await_sleep(ms(1)).await;
                panic!("the child fails")
            })
            .await;
        // Awaiting a failed task panics in the await's decoder.
        assert!(CatchUnwind(t.await_task(child)).await.is_err());
        t.await_sleep(ms(1)).await;
        t.print("recovered").await;
        0i64
    });
    let run = s.run();
    assert!(
        run.trace.logs.iter().any(|l| l.text == "recovered"),
        "{:?}",
        run.outcome
    );
}

#[test]
fn a_stackless_thread_starts_threads_with_priorities_and_sends_sized_values_as_a_stackful_one_does()
{
    use sim_core::ThreadOptions;
    let with = |priority| ThreadOptions {
        priority,
        ..ThreadOptions::default()
    };
    let scenario = |stackless: bool| {
        let mut sim = Simulation::new(textbook(1, SchedulerKind::Priority)).unwrap();
        let ch = sim.channel::<u32>("ch", 4);
        if stackless {
            // The parent outranks both children: neither runs before it waits.
            sim.add_stackless_thread_to(
                ProcessId::MAIN,
                "parent",
                with(10),
                move |ctx| async move {
                    let low = ctx
                        .start_thread_with("low", with(1), move |c| async move {
                            c.compute(ms(1)).await;
                            c.send_sized(ch, 1, 4096).await;
                        })
                        .await;
                    let high = ctx
                        .start_thread_with("high", with(5), move |c| async move {
                            c.compute(ms(1)).await;
                            c.send_sized(ch, 5, 4096).await;
                        })
                        .await;
                    ctx.join(low).await;
                    ctx.join(high).await;
                    let first = ctx.recv(ch).await;
                    ctx.print(format!("first {first}")).await;
                },
            );
        } else {
            sim.add_thread_to(ProcessId::MAIN, "parent", with(10), move |ctx| {
                let low = ctx.start_thread_with("low", with(1), move |c| {
                    c.compute(ms(1));
                    c.send_sized(ch, 1, 4096);
                });
                let high = ctx.start_thread_with("high", with(5), move |c| {
                    c.compute(ms(1));
                    c.send_sized(ch, 5, 4096);
                });
                ctx.join(low);
                ctx.join(high);
                let first = ctx.recv(ch);
                ctx.print(format!("first {first}"));
            });
        }
        sim.run()
    };
    let (a, b) = (scenario(false), scenario(true));
    assert!(a.completed(), "{:?}", a.outcome);
    assert_same_run(&a, &b);
    // Of the two children, the higher priority ran first on the one CPU.
    assert!(
        b.trace.logs.iter().any(|l| l.text == "first 5"),
        "{:?}",
        b.trace.logs
    );
}

/// A submitter that uses a thread pool and a process pool: submits, asks
/// whether a job is done, waits for every result, shuts both down; written
/// once for both kinds of thread (`$submit`, `$result`, `$done`,
/// `$shutdown` name the stackful or the stackless methods).
macro_rules! pooled {
    ($s:ident, $add:ident, $submit:ident, $result:ident, $done:ident, $shutdown:ident, $($aw:tt)*) => {{
        let py = $s.add_process("python", sim_core::ProcessOptions::python(ms(5)));
        let threads = $s.thread_pool(py, "threads", 2);
        let procs = $s.process_pool(py, "procs", 2, sim_core::ProcessPoolOptions::default());
        $add!($s, py, "submitter", move |ctx| {
            let mut futures = Vec::new();
            for i in 0..3u64 {
                futures.push(threads.$submit(ctx, "t", move |c| {
                    c.compute(ms(2));
                    i
                }) $($aw)*);
                futures.push(procs.$submit(ctx, "p", move |c| {
                    c.compute(ms(3));
                    10 * i
                }) $($aw)*);
            }
            let early = futures[0].$done(ctx) $($aw)*;
            let mut sum = 0;
            for f in &futures {
                sum += f.$result(ctx) $($aw)*.expect("no job fails");
            }
            let late = futures[0].$done(ctx) $($aw)*;
            threads.$shutdown(ctx) $($aw)*;
            procs.$shutdown(ctx) $($aw)*;
            ctx.print(format!("sum {sum}, done {early} then {late}")) $($aw)*;
        });
    }};
}

#[test]
fn a_stackless_thread_uses_thread_and_process_pools_as_a_stackful_one_does() {
    use sim_core::ThreadOptions;
    macro_rules! stackful {
        ($s:ident, $p:ident, $name:literal, $body:expr) => {
            $s.add_thread_to($p, $name, ThreadOptions::default(), $body)
        };
    }
    macro_rules! stackless {
        ($s:ident, $p:ident, $name:literal, move |$ctx:ident| $body:block) => {
            $s.add_stackless_thread_to(
                $p,
                $name,
                ThreadOptions::default(),
                move |$ctx| async move { $body },
            )
        };
    }
    let machine = Machine {
        cpus: 4,
        ..Machine::default()
    };
    let mut a = Simulation::new(machine.clone()).unwrap();
    pooled!(a, stackful, submit, result, done, shutdown,);
    let a = a.run();
    let mut b = Simulation::new(machine).unwrap();
    pooled!(b, stackless, submit_async, result_async, done_async, shutdown_async, .await);
    let b = b.run();
    assert_same_run(&a, &b);
    assert!(
        b.trace
            .logs
            .iter()
            .any(|l| l.text == "sum 33, done false then true"),
        "{:?}",
        b.trace.logs
    );
    assert_eq!(a.trace.pools.len(), 2);
    assert_eq!(
        format!("{:?}", a.trace.pools),
        format!("{:?}", b.trace.pools)
    );
    // The submitter's operations, a submit's worker starts included, name
    // its own line (the macro's invocation, which differs between the two
    // runs); the workers' name the pool's code, the same in both.
    let origins = |run: &sim_core::Run| -> Vec<String> {
        run.trace
            .origins
            .iter()
            .map(|o| {
                if o.file.ends_with("pool.rs") {
                    format!("{o:?}")
                } else {
                    o.file.clone()
                }
            })
            .collect()
    };
    assert_eq!(origins(&a), origins(&b));
    assert!(
        origins(&a)[0].ends_with("stackless.rs"),
        "{:?}",
        a.trace.origins
    );
}
