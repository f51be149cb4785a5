//! Words for deadlocks and stalls: what each stuck thread waits for, who
//! holds it, and where in the script the thread blocked. The kernel finds
//! the cycle the moment it closes (`kernel/deadlock.rs`); this module
//! explains it.

use crate::model::thread::{BlockReason, ThreadState};
use crate::trace::{Deadlock, Trace, WaitTarget};

/// The threads that hold `resource` at the end of the run (a lock's owner,
/// a semaphore's or read lock's holders), in the order they took it: each
/// acquisition not matched by a release of the same thread. A stall report
/// names them, as a deadlock's names the next thread on the cycle.
pub fn holders(trace: &Trace, resource: crate::ids::ResourceId) -> Vec<crate::ids::ThreadId> {
    use crate::trace::SyncAction;
    let mut held: Vec<crate::ids::ThreadId> = Vec::new();
    for event in trace.sync.iter().filter(|e| e.resource == resource) {
        match event.action {
            SyncAction::Acquired { .. } => held.push(event.thread),
            SyncAction::Released => {
                if let Some(k) = held.iter().rposition(|&t| t == event.thread) {
                    held.remove(k);
                }
            }
            _ => {}
        }
    }
    // Each holder once, in the order it first took the resource.
    let mut seen = Vec::new();
    held.retain(|t| {
        let first = !seen.contains(t);
        seen.push(*t);
        first
    });
    held
}

/// What a thread in `state` waits for, e.g. "lock 'm1'" or "join 'worker'".
pub fn describe_state(trace: &Trace, state: ThreadState) -> String {
    let named = |kind: &str, id| format!("{kind} '{}'", trace.resource_name(id));
    match state {
        ThreadState::Blocked(reason) => match reason {
            BlockReason::Sleep => "sleep".to_string(),
            BlockReason::Join(t) => format!("join '{}'", trace.threads[t.index()].name),
            BlockReason::Lock(r) => named(trace.resources[r.index()].kind.name(), r),
            BlockReason::Semaphore(r) => named("semaphore", r),
            BlockReason::RwLock(r) => named("rwlock", r),
            BlockReason::Condvar(r) => named("condvar", r),
            BlockReason::Barrier(r) => named("barrier", r),
            BlockReason::Channel(r) => named("channel", r),
            BlockReason::Io(r) => named("device", r),
            BlockReason::Gil(p) => format!("the GIL of '{}'", trace.processes[p.index()].name),
            BlockReason::Epoll(r) => named("epoll", r),
            BlockReason::Event(r) => named("event", r),
            BlockReason::Countdown(r) => named("countdown", r),
            BlockReason::Future(r) => format!("the result of {}", named("job", r)),
        },
        ThreadState::Spin(r) => format!("spinning on {}", named("spinlock", r)),
        other => other.name().to_string(),
    }
}

/// One line per step of the cycle: "a waits for mutex 'm1', held by b
/// (deadlock.rhai:12:9)".
pub fn explain(deadlock: &Deadlock, trace: &Trace) -> Vec<String> {
    let name = |t: crate::ids::ThreadId| trace.threads[t.index()].name.clone();
    deadlock
        .cycle
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let next = &deadlock.cycle[(i + 1) % deadlock.cycle.len()];
            let what = match step.target {
                WaitTarget::Resource(r) => format!(
                    "{} '{}', held by {}",
                    trace.resources[r.index()].kind.name(),
                    trace.resource_name(r),
                    name(next.thread)
                ),
                WaitTarget::Thread(t) => format!("thread {} to finish (join)", name(t)),
            };
            let at = trace.at(step.origin);
            format!("{} waits for {what}{at}", name(step.thread))
        })
        .collect()
}
