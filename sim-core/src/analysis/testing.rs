//! Hand-built traces for the analyses' tests.

use crate::ids::{ProcessId, ResourceId, ThreadId};
use crate::model::machine::Machine;
use crate::model::process::ProcessInfo;
use crate::model::thread::ThreadState;
use crate::time::{ms, Time};
use crate::trace::{
    ResourceInfo, ResourceKind, StateChange, SyncAction, SyncEvent, ThreadInfo, Trace,
};

/// Builds a trace by hand; times are in milliseconds.
pub(crate) struct TraceBuilder {
    trace: Trace,
}

/// The instant `n` milliseconds into the run.
pub(crate) fn at(n: u64) -> Time {
    Time(ms(n).as_nanos())
}

impl TraceBuilder {
    /// An empty trace of `machine` with one process.
    pub(crate) fn new(machine: Machine) -> TraceBuilder {
        let mut trace = Trace::new(machine);
        trace.processes.push(ProcessInfo {
            name: "main".to_string(),
        });
        TraceBuilder { trace }
    }

    /// Adds a thread created at time zero.
    pub(crate) fn thread(&mut self, name: &str) -> ThreadId {
        self.trace.threads.push(ThreadInfo {
            name: name.to_string(),
            process: ProcessId::MAIN,
            parent: None,
            created: Time::ZERO,
            priority: 0,
            nice: 0,
            task_of: None,
        });
        ThreadId(self.trace.threads.len() as u32 - 1)
    }

    /// Adds a resource.
    pub(crate) fn resource(&mut self, name: &str, kind: ResourceKind) -> ResourceId {
        self.trace.resources.push(ResourceInfo {
            name: name.to_string(),
            kind,
            internal: false,
        });
        ResourceId(self.trace.resources.len() as u32 - 1)
    }

    /// `thread` enters `state` at `time` ms.
    pub(crate) fn state(&mut self, time: u64, thread: ThreadId, state: ThreadState) -> &mut Self {
        self.trace
            .states
            .push(StateChange::new(at(time), thread, state, None, None));
        self
    }

    /// `thread` does `action` to `resource` at `time` ms.
    pub(crate) fn sync(
        &mut self,
        time: u64,
        thread: ThreadId,
        resource: ResourceId,
        action: SyncAction,
    ) -> &mut Self {
        self.trace.sync.push(SyncEvent {
            time: at(time),
            thread,
            resource,
            action,
        });
        self
    }

    /// The trace, ending at `end` ms, its events sorted by time (stably).
    pub(crate) fn end(&mut self, end: u64) -> Trace {
        let mut trace = self.trace.clone();
        trace.end = at(end);
        let mut states: Vec<_> = trace.states.iter().collect();
        states.sort_by_key(|c| c.time());
        trace.states = states.into();
        trace.sync.sort_by_key(|e| e.time);
        trace
    }
}
