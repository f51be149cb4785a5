//! The per-process gate: a toy "big lock" shows that a gate decides who runs.

use std::collections::VecDeque;

use sim_core::{
    ms, BlockKind, BlockReason, GateActions, ProcessGate, ProcessId, ProcessOptions, SchedulerKind,
    Simulation, ThreadId, ThreadOptions, Time,
};

use crate::{end_ns, textbook};

/// Lets one thread of the process run at a time, first come first served;
/// the holder keeps the lock until it blocks or ends.
#[derive(Debug)]
struct BigLock {
    process: ProcessId,
    holder: Option<ThreadId>,
    waiting: VecDeque<ThreadId>,
}

impl ProcessGate for BigLock {
    fn admit(&mut self, thread: ThreadId, _now: Time, _actions: &mut GateActions) -> bool {
        match self.holder {
            None => {
                self.holder = Some(thread);
                true
            }
            Some(holder) if holder == thread => true,
            Some(_) => {
                self.waiting.push_back(thread);
                false
            }
        }
    }

    fn release(&mut self, thread: ThreadId, _now: Time, actions: &mut GateActions) {
        if self.holder == Some(thread) {
            self.holder = self.waiting.pop_front();
            if let Some(next) = self.holder {
                actions.admit(next);
            }
        }
    }

    fn hold_reason(&self) -> BlockReason {
        BlockReason::Gil(self.process)
    }
}

#[test]
fn a_gate_serialises_its_process_while_other_processes_run() {
    let mut sim = Simulation::new(textbook(2, SchedulerKind::RoundRobin)).unwrap();
    let py = sim.add_process(
        "python",
        ProcessOptions {
            gate: Some(Box::new(BigLock {
                process: ProcessId(1),
                holder: None,
                waiting: VecDeque::new(),
            })),
            gil: None,
            compute_overhead: 0.0,
        },
    );
    for name in ["p1", "p2"] {
        sim.add_thread_to(py, name, ThreadOptions::default(), |ctx| {
            ctx.compute(ms(10))
        });
    }
    sim.add_thread("free", |ctx| ctx.compute(ms(10)));
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    // p1 runs 0-10 on cpu0; p2 is held by the gate; free runs 0-10 on cpu1.
    assert_eq!(end_ns(&stats, "p1"), ms(10).as_nanos());
    assert_eq!(end_ns(&stats, "free"), ms(10).as_nanos());
    assert_eq!(end_ns(&stats, "p2"), ms(20).as_nanos());
    assert_eq!(
        stats.thread("p2").unwrap().blocked_on(BlockKind::Gil),
        ms(10)
    );
    // Never two threads of the gated process on CPUs at once.
    let intervals = run.trace.thread_intervals();
    let p1 = &intervals[0];
    let p2 = &intervals[1];
    for a in p1.iter().filter(|i| i.state.on_cpu()) {
        for b in p2.iter().filter(|i| i.state.on_cpu()) {
            assert!(a.end <= b.start || b.end <= a.start);
        }
    }
}

/// Drops the running thread every `period` and lets the next one in: shows
/// timers and interrupts.
#[derive(Debug)]
struct Rotating {
    process: ProcessId,
    period: u64,
    holder: Option<ThreadId>,
    waiting: VecDeque<ThreadId>,
}

impl ProcessGate for Rotating {
    fn admit(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) -> bool {
        if self.holder.is_none() || self.holder == Some(thread) {
            self.holder = Some(thread);
            actions.set_timer(Time(now.as_nanos() + self.period), 0);
            true
        } else {
            self.waiting.push_back(thread);
            false
        }
    }

    fn release(&mut self, thread: ThreadId, now: Time, actions: &mut GateActions) {
        if self.holder == Some(thread) {
            self.holder = self.waiting.pop_front();
            if let Some(next) = self.holder {
                actions.admit(next);
                actions.set_timer(Time(now.as_nanos() + self.period), 0);
            }
        }
    }

    fn timer(&mut self, _token: u64, _now: Time, actions: &mut GateActions) {
        if let (Some(holder), false) = (self.holder, self.waiting.is_empty()) {
            actions.interrupt(holder);
        }
    }

    fn hold_reason(&self) -> BlockReason {
        BlockReason::Gil(self.process)
    }
}

#[test]
fn a_gate_can_interrupt_the_holder_on_a_timer() {
    let mut sim = Simulation::new(textbook(2, SchedulerKind::Fifo)).unwrap();
    let py = sim.add_process(
        "python",
        ProcessOptions {
            gate: Some(Box::new(Rotating {
                process: ProcessId(1),
                period: ms(4).as_nanos(),
                holder: None,
                waiting: VecDeque::new(),
            })),
            gil: None,
            compute_overhead: 0.0,
        },
    );
    for name in ["a", "b"] {
        sim.add_thread_to(py, name, ThreadOptions::default(), |ctx| {
            ctx.compute(ms(10))
        });
    }
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let stats = run.stats();
    // a 0-4, b 4-8, a 8-12, b 12-16, a 16-18 (done), b 18-20 (done): the
    // gate alternates them although a second CPU is free.
    assert_eq!(end_ns(&stats, "a"), ms(18).as_nanos());
    assert_eq!(stats.thread("a").unwrap().blocked_on(BlockKind::Gil), ms(8));
    assert_eq!(end_ns(&stats, "b"), ms(20).as_nanos());
}
