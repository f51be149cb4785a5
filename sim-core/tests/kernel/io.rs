//! I/O devices and epoll: hand-computed timelines (FIFO across channels,
//! bandwidth, a request arriving while every channel is busy, epoll order
//! and timeout, a channel and a device in one set), misuse, replay of
//! explored arrival orders, and a property test of the device's service.

use proptest::prelude::*;
use sim_core::{
    ms, us, DeviceOptions, Misuse, Outcome, Pollable, ProcessOptions, RandomChooser, ReplayChooser,
    SchedulerKind, SimError, Simulation, Span,
};

use crate::{end_ns, textbook};

const MS: u64 = 1_000_000;

fn sim(cpus: u16) -> Simulation {
    Simulation::new(textbook(cpus, SchedulerKind::RoundRobin)).unwrap()
}

/// 1 byte per millisecond: sizes read as transfer times.
const BYTE_PER_MS: Option<u64> = Some(1_000);

#[test]
fn requests_queue_fifo_for_the_lowest_free_channel_and_take_latency_plus_transfer() {
    let mut s = sim(1);
    // 2 channels, 1ms latency, 1 byte per ms: 1 byte takes 2ms.
    let disk = s.device(
        "disk",
        DeviceOptions {
            latency: ms(1),
            bandwidth: BYTE_PER_MS,
            channels: 2,
        },
    );
    for name in ["a", "b", "c"] {
        s.add_thread(name, move |ctx| ctx.io(disk, 1));
    }
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    // a and b take both channels at 0; c queues until channel 0 frees at 2ms.
    assert_eq!(end_ns(&stats, "a"), 2 * MS);
    assert_eq!(end_ns(&stats, "b"), 2 * MS);
    assert_eq!(end_ns(&stats, "c"), 4 * MS);
    let served: Vec<_> = run
        .trace
        .io
        .iter()
        .map(|r| {
            (
                r.started.map(|(t, c)| (t.as_nanos(), c)),
                r.completed.map(|t| t.as_nanos()),
            )
        })
        .collect();
    assert_eq!(
        served,
        [
            (Some((0, 0)), Some(2 * MS)),
            (Some((0, 1)), Some(2 * MS)),
            (Some((2 * MS, 0)), Some(4 * MS))
        ]
    );
    // Blocking I/O costs no CPU: the threads are in state io, off the CPU.
    assert_eq!(stats.thread("c").unwrap().cpu, Span::ZERO);
    assert_eq!(
        stats
            .thread("c")
            .unwrap()
            .blocked_on(sim_core::BlockKind::Io)
            .as_nanos(),
        4 * MS
    );
}

#[test]
fn a_submit_costs_nothing_and_wait_blocks_until_completion() {
    let mut s = sim(1);
    let net = s.device(
        "net",
        DeviceOptions {
            latency: ms(10),
            bandwidth: None,
            channels: 4,
        },
    );
    let main = s.add_thread("main", move |ctx| {
        let h = ctx.submit(net, 100);
        let at_submit = ctx.now();
        let early = ctx.io_ready(h);
        ctx.compute(ms(4));
        ctx.io_wait(h);
        let done = ctx.now();
        ctx.io_wait(h); // completed: returns at once
        (
            at_submit.as_nanos(),
            early,
            done.as_nanos(),
            ctx.io_ready(h),
            ctx.now().as_nanos(),
        )
    });
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(
        run.take_value(&main),
        Some((0, false, 10 * MS, true, 10 * MS))
    );
}

#[test]
fn epoll_returns_handles_in_completion_order_and_an_expired_timeout_returns_nothing() {
    let mut s = sim(1);
    // Three channels, 1 byte per ms, no latency: 30, 10, 20 bytes complete
    // at 30, 10 and 20ms.
    let dev = s.device(
        "dev",
        DeviceOptions {
            latency: Span::ZERO,
            bandwidth: BYTE_PER_MS,
            channels: 3,
        },
    );
    let main = s.add_thread("main", move |ctx| {
        let ep = ctx.epoll();
        let handles: Vec<_> = [30, 10, 20].iter().map(|&b| ctx.submit(dev, b)).collect();
        for &h in &handles {
            ctx.epoll_add(ep, h);
        }
        let mut log = Vec::new();
        let mut record = |ready: Vec<Pollable>, now: sim_core::Time| {
            let which: Vec<usize> = ready
                .iter()
                .map(|p| handles.iter().position(|h| Pollable::Io(*h) == *p).unwrap())
                .collect();
            log.push((now.as_nanos() / MS, which));
        };
        let ready = ctx.epoll_wait(ep, None);
        record(ready, ctx.now());
        let ready = ctx.epoll_wait(ep, None);
        record(ready, ctx.now());
        let ready = ctx.epoll_wait(ep, Some(ms(5)));
        record(ready, ctx.now());
        let ready = ctx.epoll_wait(ep, Some(ms(50)));
        record(ready, ctx.now());
        (log, ctx.epoll_len(ep))
    });
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let (log, left) = run.take_value(&main).unwrap();
    assert_eq!(
        log,
        [(10, vec![1]), (20, vec![2]), (25, vec![]), (30, vec![0])]
    );
    assert_eq!(left, 0);
}

#[test]
fn completions_that_arrive_before_the_waiter_runs_come_back_together() {
    // One CPU: a hog computes while two requests complete at 1 and 2ms;
    // the epoll thread, woken at 1ms, gets the CPU at 5ms and collects both.
    let mut s = Simulation::new(sim_core::Machine {
        quantum: ms(5),
        ..textbook(1, SchedulerKind::RoundRobin)
    })
    .unwrap();
    let dev = s.device(
        "dev",
        DeviceOptions {
            latency: ms(1),
            bandwidth: BYTE_PER_MS,
            channels: 2,
        },
    );
    let poller = s.add_thread("poller", move |ctx| {
        let ep = ctx.epoll();
        let a = ctx.submit(dev, 0);
        let b = ctx.submit(dev, 1);
        ctx.epoll_add(ep, a);
        ctx.epoll_add(ep, b);
        let ready = ctx.epoll_wait(ep, None);
        (
            ready == vec![Pollable::Io(a), Pollable::Io(b)],
            ctx.now().as_nanos(),
        )
    });
    s.add_thread("hog", |ctx| ctx.compute(ms(20)));
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.take_value(&poller), Some((true, 5 * MS)));
}

#[test]
fn a_channel_and_a_device_wait_in_one_epoll_set() {
    let mut s = sim(2);
    let disk = s.device(
        "disk",
        DeviceOptions {
            latency: ms(10),
            bandwidth: None,
            channels: 1,
        },
    );
    let messages = s.channel::<u32>("messages", 1);
    s.add_thread("sender", move |ctx| {
        ctx.sleep(ms(4));
        ctx.send(messages, 7);
    });
    let main = s.add_thread("main", move |ctx| {
        let ep = ctx.epoll();
        let h = ctx.submit(disk, 512);
        ctx.epoll_add(ep, h);
        ctx.epoll_add(ep, messages.readable());
        ctx.epoll_add(ep, messages.writable()); // room now: ready at once
        let first = ctx.epoll_wait(ep, None);
        let second = ctx.epoll_wait(ep, None);
        let t2 = ctx.now().as_nanos();
        let value = ctx.recv(messages);
        let third = ctx.epoll_wait(ep, None);
        (
            first == vec![messages.writable()],
            second == vec![messages.readable()],
            t2,
            value,
            third == vec![Pollable::Io(h)],
            ctx.now().as_nanos(),
        )
    });
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(
        run.take_value(&main),
        Some((true, true, 4 * MS, 7, true, 10 * MS))
    );
}

fn misuse_of(run: &sim_core::Run) -> Misuse {
    match run.error() {
        Some(SimError::Misuse { misuse, .. }) => misuse.clone(),
        other => panic!("expected a misuse, got {other:?}"),
    }
}

#[test]
fn waiting_on_an_empty_set_without_a_timeout_is_a_misuse() {
    let mut s = sim(1);
    s.add_thread("main", |ctx| {
        let ep = ctx.epoll();
        ctx.epoll_wait(ep, None);
    });
    let run = s.run();
    assert_eq!(misuse_of(&run), Misuse::EmptyEpoll);
    // With a timeout it just waits.
    let mut s = sim(1);
    s.add_thread("main", |ctx| {
        let ep = ctx.epoll();
        assert!(ctx.epoll_wait(ep, Some(us(3))).is_empty());
    });
    let run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.trace.end, sim_core::Time(3_000));
}

#[test]
fn a_handle_of_another_process_is_refused_with_both_names() {
    let mut s = sim(2);
    let disk = s.device("disk", DeviceOptions::default());
    let tx = s.channel::<u64>("handles", 1);
    let worker = s.add_process("worker", ProcessOptions::default());
    s.add_thread("main", move |ctx| {
        let h = ctx.submit(disk, 1);
        ctx.send(tx, u64::from(h.id.0));
    });
    s.add_thread_to(worker, "other", Default::default(), move |ctx| {
        let id = ctx.recv(tx);
        let h = sim_core::IoHandle {
            id: sim_core::IoId(id as u32),
            device: disk.id(),
            bytes: 1,
        };
        let ep = ctx.epoll();
        ctx.epoll_add(ep, h);
    });
    let run = s.run();
    match misuse_of(&run) {
        Misuse::ForeignHandle {
            what,
            owner,
            accessor,
        } => {
            assert_eq!((owner.as_str(), accessor.as_str()), ("main", "worker"));
            assert!(what.contains("disk"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

/// Two threads submit to a one-channel device at the same instant.
fn same_instant() -> Simulation {
    let mut s = sim(2);
    let disk = s.device(
        "disk",
        DeviceOptions {
            latency: ms(1),
            bandwidth: None,
            channels: 1,
        },
    );
    s.add_thread("a", move |ctx| ctx.io(disk, 1));
    s.add_thread("b", move |ctx| ctx.io(disk, 2));
    s
}

#[test]
fn exploration_reorders_same_instant_arrivals_and_replay_reproduces_the_order() {
    let default = same_instant().run();
    assert_eq!(end_ns(&default.stats(), "a"), MS);
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut s = same_instant();
        s.set_chooser(Box::new(RandomChooser::new(seed)));
        let run = s.run();
        assert!(run.completed());
        let first = run
            .trace
            .io
            .iter()
            .find(|r| r.started.is_some_and(|(t, _)| t.as_nanos() == 0))
            .unwrap()
            .bytes;
        orders.insert(first);
        let mut replay = same_instant();
        replay.set_chooser(Box::new(ReplayChooser::new(run.decisions.clone())));
        assert_eq!(replay.run().trace, run.trace);
    }
    assert_eq!(orders.into_iter().collect::<Vec<_>>(), [1, 2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_device_serves_at_most_its_channels_and_each_request_takes_its_service_time(
        channels in 1u16..4,
        latency in 0u64..2_000,
        bandwidth in proptest::option::of(1_000u64..10_000_000_000),
        threads in proptest::collection::vec(
            proptest::collection::vec((0u64..3_000, 0u64..5_000, any::<bool>()), 1..6),
            1..5,
        ),
        seed in proptest::option::of(0u64..1000),
    ) {
        let options = DeviceOptions { latency: Span(latency), bandwidth, channels };
        let mut s = sim(2);
        if let Some(seed) = seed {
            s.set_chooser(Box::new(RandomChooser::new(seed)));
        }
        let dev = s.device("dev", options);
        for (i, steps) in threads.iter().enumerate() {
            let steps = steps.clone();
            s.add_thread(&format!("t{i}"), move |ctx| {
                let mut pending = Vec::new();
                for (gap, bytes, blocking) in steps {
                    ctx.sleep(Span(gap));
                    if blocking { ctx.io(dev, bytes) } else { pending.push(ctx.submit(dev, bytes)) }
                }
                for h in pending { ctx.io_wait(h) }
            });
        }
        let run = s.run();
        prop_assert_eq!(&run.outcome, &Outcome::Completed);
        let io = &run.trace.io;
        for r in io {
            let (start, channel) = r.started.unwrap();
            prop_assert!(channel < channels);
            prop_assert!(start >= r.submitted);
            prop_assert_eq!(r.completed.unwrap() - start, options.service_time(r.bytes));
        }
        for r in io {
            let (start, _) = r.started.unwrap();
            let busy = io.iter().filter(|o| {
                let (s, _) = o.started.unwrap();
                s <= start && start < o.completed.unwrap()
            }).count();
            prop_assert!(busy <= usize::from(channels));
            // One channel never serves two requests at once.
            for o in io {
                if std::ptr::eq(o, r) || o.started.unwrap().1 != r.started.unwrap().1 { continue; }
                let (os, oe) = (o.started.unwrap().0, o.completed.unwrap());
                prop_assert!(oe <= start || r.completed.unwrap() <= os || (os == oe) || (start == r.completed.unwrap()));
            }
        }
    }
}

#[test]
fn completions_of_one_instant_come_back_in_one_wait() {
    let mut s = sim(2);
    let dev = s.device(
        "dev",
        DeviceOptions {
            latency: ms(1),
            bandwidth: None,
            channels: 3,
        },
    );
    let main = s.add_thread("main", move |ctx| {
        let ep = ctx.epoll();
        let handles: Vec<_> = (0..3).map(|b| ctx.submit(dev, b)).collect();
        for &h in &handles {
            ctx.epoll_add(ep, h);
        }
        let ready = ctx.epoll_wait(ep, None);
        let expected: Vec<Pollable> = handles.into_iter().map(Pollable::Io).collect();
        (ready == expected, ctx.now().as_nanos(), ctx.epoll_len(ep))
    });
    let mut run = s.run();
    assert!(run.completed(), "{:?}", run.outcome);
    assert_eq!(run.take_value(&main), Some((true, MS, 0)));
}
