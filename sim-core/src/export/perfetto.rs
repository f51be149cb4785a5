//! A trace as Chrome trace event JSON, for ui.perfetto.dev and
//! chrome://tracing.
//!
//! What goes where (`pid` is a group of tracks, `tid` one track):
//!
//! ```text
//! pid 1 "machine"      one track per CPU (the thread it ran, "switch" and
//!                      "spin" as slices of their own), one per device
//!                      channel (requests in service), counters: ready
//!                      threads, memory
//! pid 2 + p            process p: one track per thread, every state as a
//!                      slice ("running", "ready", "lock 'm'", "io 'disk'"),
//!                      the GIL's holder if it has one, and its asyncio
//!                      tasks as async slices under their loop
//! ```
//!
//! Flow arrows link the thread that released a lock, sent, notified or
//! finished to the thread it let go on, and a device's completed request
//! to the thread that made it; instants mark the deadlock, each data race
//! and what the caller adds ([`Mark`]: failed expectations).
//!
//! Timestamps are microseconds, as the format wants, written with up to
//! three decimals: a nanosecond time prints as its exact decimal (below
//! 10^15 ns, about 11 days, where an f64 still holds it), so nothing is
//! rounded away. The output is a pure function of the trace: byte-identical
//! on every run (serde_json's maps are sorted by key).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::ids::{ProcessId, ResourceId, ThreadId};
use crate::model::python::gil::GilAction;
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::Time;
use crate::trace::{SyncAction, Trace, WaitTarget};

/// The group of the machine's own tracks.
const MACHINE_PID: u64 = 1;

/// Something to mark on the timeline that the trace itself does not hold,
/// such as a failed expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When (a failed expectation: the end of the run).
    pub time: Time,
    /// What to show.
    pub name: String,
    /// The thread it concerns; `None` marks the whole timeline.
    pub thread: Option<ThreadId>,
}

/// What the export adds to the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfettoOptions {
    /// Extra instants, in the order given.
    pub marks: Vec<Mark>,
}

/// Microseconds, exactly: `1_234_567` ns is `1234.567`.
fn micros(t: u64) -> Value {
    json!(t as f64 / 1000.0)
}

/// Which track each thing is drawn on.
struct Tracks {
    /// Per thread: its process group and track.
    threads: Vec<(u64, u64)>,
    /// Per CPU: its track in the machine group.
    cpus: Vec<u64>,
    /// Per device (by declaration order): the track of its first channel.
    devices: BTreeMap<ResourceId, u64>,
    /// Per process with a GIL: the track of its holder.
    gils: BTreeMap<ProcessId, u64>,
    next: u64,
}

impl Tracks {
    /// Track ids are unique across the whole file, handed out in a fixed
    /// order (CPUs, devices, threads, GILs) so the output is stable.
    fn new(trace: &Trace) -> Tracks {
        let mut tracks = Tracks {
            threads: Vec::new(),
            cpus: Vec::new(),
            devices: BTreeMap::new(),
            gils: BTreeMap::new(),
            next: 1,
        };
        for _ in 0..trace.machine.cpus {
            let tid = tracks.take(1);
            tracks.cpus.push(tid);
        }
        for device in &trace.devices {
            let tid = tracks.take(u64::from(device.options.channels.max(1)));
            tracks.devices.insert(device.resource, tid);
        }
        for thread in &trace.threads {
            let tid = tracks.take(1);
            tracks.threads.push((process_pid(thread.process), tid));
        }
        for event in &trace.gil {
            if !tracks.gils.contains_key(&event.process) {
                let tid = tracks.take(1);
                tracks.gils.insert(event.process, tid);
            }
        }
        // Pools are counters of their process (see `pools`): no track.
        tracks
    }

    fn take(&mut self, n: u64) -> u64 {
        let first = self.next;
        self.next += n;
        first
    }

    fn thread(&self, t: ThreadId) -> (u64, u64) {
        self.threads[t.index()]
    }
}

fn process_pid(p: ProcessId) -> u64 {
    2 + u64::from(p.0)
}

/// Where an operation was made, as "file:line:column", unless it was made
/// by the simulator itself (an event loop's own epoll, a task made ready by
/// its loop): those point into sim-core's sources, not the user's.
fn user_origin(trace: &Trace, origin: Option<crate::ids::OriginId>) -> Option<String> {
    origin
        .and_then(|o| trace.origin(o))
        .filter(|o| !o.file.starts_with("sim-core/src/"))
        .map(ToString::to_string)
}

/// What a thread in `state` is doing, as a slice name.
fn state_name(trace: &Trace, state: ThreadState) -> String {
    let resource = |r: ResourceId| trace.resource_name(r).to_string();
    match state {
        ThreadState::Spin(r) => format!("spin '{}'", resource(r)),
        ThreadState::Blocked(reason) => match reason {
            BlockReason::Sleep => "sleep".to_string(),
            BlockReason::Join(t) => format!(
                "join '{}'",
                trace
                    .threads
                    .get(t.index())
                    .map_or("?", |t| t.name.as_str())
            ),
            BlockReason::Gil(p) => format!(
                "gil '{}'",
                trace
                    .processes
                    .get(p.index())
                    .map_or("?", |p| p.name.as_str())
            ),
            BlockReason::Lock(r)
            | BlockReason::Semaphore(r)
            | BlockReason::RwLock(r)
            | BlockReason::Condvar(r)
            | BlockReason::Barrier(r)
            | BlockReason::Channel(r)
            | BlockReason::Io(r)
            | BlockReason::Epoll(r)
            | BlockReason::Event(r)
            | BlockReason::Countdown(r) => {
                format!("{} '{}'", reason.kind().name(), resource(r))
            }
            BlockReason::Future(r) => format!("result '{}'", resource(r)),
        },
        other => other.name().to_string(),
    }
}

/// The Chrome trace event JSON of `trace`: one event per line, so that two
/// exports compare line by line.
pub fn perfetto(trace: &Trace, options: &PerfettoOptions) -> String {
    let mut out = Vec::new();
    write_perfetto(trace, options, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// [`perfetto`], written to `out` event by event: the export holds one
/// event at a time (and the slices of each asyncio task until its end), so
/// a long trace does not need its whole JSON in memory.
pub fn write_perfetto(
    trace: &Trace,
    options: &PerfettoOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
    let tracks = Tracks::new(trace);
    let mut events = Events {
        out,
        count: 0,
        error: None,
    };
    metadata(trace, &tracks, &mut events);
    cpus(trace, &tracks, &mut events);
    threads(trace, &tracks, &mut events);
    devices(trace, &tracks, &mut events);
    gil(trace, &tracks, &mut events);
    pools(trace, &tracks, &mut events);
    flows(trace, &tracks, &mut events);
    counters(trace, &mut events);
    instants(trace, &tracks, options, &mut events);
    if let Some(error) = events.error {
        return Err(error);
    }
    events.out.write_all(b"\n]}\n")
}

/// Where the events go: each is written as soon as it is made, with a
/// comma and a line break between two. The first write error is kept and
/// the rest skipped.
struct Events<'w> {
    out: &'w mut dyn Write,
    count: u64,
    error: Option<io::Error>,
}

impl Events<'_> {
    fn push(&mut self, event: Value) {
        if self.error.is_some() {
            return;
        }
        let separator = if self.count == 0 { "" } else { ",\n" };
        self.count += 1;
        if let Err(error) = write!(self.out, "{separator}{event}") {
            self.error = Some(error);
        }
    }

    fn extend(&mut self, events: impl IntoIterator<Item = Value>) {
        for event in events {
            self.push(event);
        }
    }
}

fn meta(pid: u64, tid: Option<u64>, name: &str, args: Value) -> Value {
    let mut event = json!({ "ph": "M", "pid": pid, "name": name, "args": args });
    if let Some(tid) = tid {
        event["tid"] = json!(tid);
    }
    event
}

/// Names and order of the groups and tracks.
fn metadata(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    events.push(meta(
        MACHINE_PID,
        None,
        "process_name",
        json!({ "name": "machine" }),
    ));
    events.push(meta(
        MACHINE_PID,
        None,
        "process_sort_index",
        json!({ "sort_index": 0 }),
    ));
    for (i, &tid) in tracks.cpus.iter().enumerate() {
        events.push(meta(
            MACHINE_PID,
            Some(tid),
            "thread_name",
            json!({ "name": format!("cpu{i}") }),
        ));
        events.push(meta(
            MACHINE_PID,
            Some(tid),
            "thread_sort_index",
            json!({ "sort_index": tid }),
        ));
    }
    for device in &trace.devices {
        let first = tracks.devices[&device.resource];
        let name = trace.resource_name(device.resource);
        for channel in 0..u64::from(device.options.channels.max(1)) {
            let tid = first + channel;
            let label = if device.options.channels > 1 {
                format!("device '{name}' channel {channel}")
            } else {
                format!("device '{name}'")
            };
            events.push(meta(
                MACHINE_PID,
                Some(tid),
                "thread_name",
                json!({ "name": label }),
            ));
            events.push(meta(
                MACHINE_PID,
                Some(tid),
                "thread_sort_index",
                json!({ "sort_index": tid }),
            ));
        }
    }
    for (p, process) in trace.processes.iter().enumerate() {
        let pid = process_pid(ProcessId(p as u32));
        events.push(meta(
            pid,
            None,
            "process_name",
            json!({ "name": process.name }),
        ));
        events.push(meta(
            pid,
            None,
            "process_sort_index",
            json!({ "sort_index": pid }),
        ));
    }
    for (t, thread) in trace.threads.iter().enumerate() {
        if thread.task_of.is_some() {
            continue;
        }
        let (pid, tid) = tracks.threads[t];
        events.push(meta(
            pid,
            Some(tid),
            "thread_name",
            json!({ "name": thread.name }),
        ));
        events.push(meta(
            pid,
            Some(tid),
            "thread_sort_index",
            json!({ "sort_index": tid }),
        ));
    }
    for (&process, &tid) in &tracks.gils {
        let pid = process_pid(process);
        events.push(meta(
            pid,
            Some(tid),
            "thread_name",
            json!({ "name": "GIL (holder)" }),
        ));
        events.push(meta(
            pid,
            Some(tid),
            "thread_sort_index",
            json!({ "sort_index": tid }),
        ));
    }
}

fn slice(pid: u64, tid: u64, name: &str, start: Time, end: Time, args: Value) -> Value {
    json!({
        "ph": "X", "pid": pid, "tid": tid, "name": name,
        "ts": micros(start.0), "dur": micros(end.0 - start.0), "args": args,
    })
}

/// Per CPU: which thread ran, and the switch and spin time as their own
/// slices.
fn cpus(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    for (c, list) in trace.cpu_intervals().iter().enumerate() {
        for interval in list {
            let thread = trace.threads[interval.thread.index()].name.as_str();
            let name = match interval.state {
                ThreadState::Running => thread.to_string(),
                other => state_name(trace, other),
            };
            events.push(slice(
                MACHINE_PID,
                tracks.cpus[c],
                &name,
                interval.start,
                interval.end,
                json!({ "thread": thread }),
            ));
        }
    }
}

/// Per thread: every state as a slice; per asyncio task, its states as
/// async slices nested in one slice of its whole life, under its loop.
fn threads(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    let mut tasks: BTreeMap<ThreadId, Vec<Value>> = BTreeMap::new();
    trace.for_each_interval(trace.end, |interval| {
        let info = &trace.threads[interval.thread.index()];
        let name = state_name(trace, interval.state);
        let mut args = Map::new();
        if let Some(origin) = user_origin(trace, interval.origin) {
            args.insert("at".into(), json!(origin));
        }
        if let Some(cpu) = interval.cpu {
            args.insert("cpu".into(), json!(cpu.0));
        }
        let (pid, tid) = tracks.thread(interval.thread);
        if info.task_of.is_some() {
            let id = interval.thread.0;
            let list = tasks.entry(interval.thread).or_default();
            for (ph, ts) in [("b", interval.start), ("e", interval.end)] {
                list.push(json!({
                    "ph": ph, "cat": "task", "id": id, "pid": pid, "tid": tid,
                    "name": name, "ts": micros(ts.0), "args": Value::Object(args.clone()),
                }));
            }
        } else {
            events.push(slice(
                pid,
                tid,
                &name,
                interval.start,
                interval.end,
                Value::Object(args),
            ));
        }
    });
    // Each task's states, inside one slice named after the task, so its
    // async track reads as the task.
    for (task, list) in tasks {
        let info = &trace.threads[task.index()];
        let (pid, tid) = tracks.thread(task);
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            continue;
        };
        let (first, last) = (first["ts"].clone(), last["ts"].clone());
        let around = |ph: &str, ts: &Value| {
            json!({
                "ph": ph, "cat": "task", "id": task.0, "pid": pid, "tid": tid,
                "name": info.name, "ts": ts, "args": {},
            })
        };
        events.push(around("b", &first));
        events.extend(list);
        events.push(around("e", &last));
    }
}

/// Per device channel: each request while in service.
fn devices(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    for record in &trace.io {
        let (Some((start, channel)), Some(&first)) =
            (record.started, tracks.devices.get(&record.device))
        else {
            continue;
        };
        let end = record.completed.unwrap_or(trace.end);
        let by = record.task.unwrap_or(record.thread);
        let mut args = json!({
            "thread": trace.threads[by.index()].name,
            "bytes": record.bytes,
            "queued": micros((start - record.submitted).as_nanos()),
        });
        if let Some(origin) = user_origin(trace, record.origin) {
            args["at"] = json!(origin);
        }
        let name = format!("{} B", record.bytes);
        events.push(slice(
            MACHINE_PID,
            first + u64::from(channel),
            &name,
            start,
            end,
            args,
        ));
    }
}

/// Per process with a GIL: who held it.
fn gil(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    let mut held: BTreeMap<ProcessId, (ThreadId, Time)> = BTreeMap::new();
    let mut close = |process: ProcessId, (thread, since): (ThreadId, Time), until: Time| {
        if until > since {
            let name = &trace.threads[thread.index()].name;
            events.push(slice(
                process_pid(process),
                tracks.gils[&process],
                name,
                since,
                until,
                json!({}),
            ));
        }
    };
    for event in &trace.gil {
        match event.action {
            GilAction::Took => {
                if let Some(open) = held.insert(event.process, (event.thread, event.time)) {
                    close(event.process, open, event.time);
                }
            }
            GilAction::Dropped { .. } => {
                if let Some(open) = held.remove(&event.process) {
                    close(event.process, open, event.time);
                }
            }
            GilAction::DropRequest => {}
        }
    }
    for (process, open) in held {
        close(process, open, trace.end);
    }
}

/// Thread and process pools: per pool a counter in its process, "queue
/// <pool>", of the jobs waiting for a worker (the jobs themselves show as
/// the workers' running slices, on the workers' own tracks).
fn pools(trace: &Trace, _tracks: &Tracks, events: &mut Events<'_>) {
    for pool in &trace.pools {
        let name = format!("queue {}", pool.name);
        for (time, queued) in pool.queue_lengths(trace.end) {
            events.push(json!({
                "ph": "C", "pid": process_pid(pool.process), "name": name,
                "ts": micros(time.0), "args": { "jobs": queued },
            }));
        }
    }
}

/// Flow arrows: from the thread whose release, send, notify or end let a
/// blocked thread go on, to that thread. A lock handed over is a
/// "hand-off", a join's end a "join", the rest a "wake-up"; then the
/// devices' completions ("io done").
fn flows(trace: &Trace, tracks: &Tracks, events: &mut Events<'_>) {
    // Who acted on each resource at each instant, in trace order.
    let mut actors: BTreeMap<(ResourceId, Time), Vec<ThreadId>> = BTreeMap::new();
    for event in &trace.sync {
        if matches!(
            event.action,
            SyncAction::Released
                | SyncAction::Sent
                | SyncAction::Received
                | SyncAction::Notified { .. }
        ) {
            actors
                .entry((event.resource, event.time))
                .or_default()
                .push(event.thread);
        }
    }
    let mut state: Vec<Option<ThreadState>> = vec![None; trace.threads.len()];
    let mut id = 0u64;
    for change in &trace.states {
        let to = change.thread();
        let before = state[to.index()].replace(change.state());
        let Some(ThreadState::Blocked(reason)) = before else {
            continue;
        };
        if matches!(change.state(), ThreadState::Blocked(_)) {
            continue;
        }
        let time = change.time();
        let (from, name, at) = match reason {
            // Bound to the end of the joined thread's last slice.
            BlockReason::Join(t) => (t, "join", Time(time.0.saturating_sub(1))),
            _ => {
                let Some(r) = reason.sync_resource() else {
                    continue;
                };
                let Some(from) = actors
                    .get(&(r, time))
                    .and_then(|list| list.iter().rev().find(|&&t| t != to))
                else {
                    continue;
                };
                let name = if matches!(
                    reason,
                    BlockReason::Lock(_) | BlockReason::RwLock(_) | BlockReason::Semaphore(_)
                ) {
                    "hand-off"
                } else {
                    "wake-up"
                };
                (*from, name, time)
            }
        };
        let ((from_pid, from_tid), (to_pid, to_tid)) = (tracks.thread(from), tracks.thread(to));
        id += 1;
        events.push(json!({
            "ph": "s", "cat": "flow", "name": name, "id": id,
            "pid": from_pid, "tid": from_tid, "ts": micros(at.0),
        }));
        events.push(json!({
            "ph": "f", "bp": "e", "cat": "flow", "name": name, "id": id,
            "pid": to_pid, "tid": to_tid, "ts": micros(time.0),
        }));
    }
    io_flows(trace, tracks, &mut id, events);
}

/// Flow arrows from a device to the thread whose request it completed
/// ("io done"), bound to the end of the request's slice. A task's request
/// has none: its track is an async one, which flows cannot bind to.
fn io_flows(trace: &Trace, tracks: &Tracks, id: &mut u64, events: &mut Events<'_>) {
    for record in trace.io.iter().filter(|r| r.task.is_none()) {
        let (Some((_, channel)), Some(done), Some(&first)) = (
            record.started,
            record.completed,
            tracks.devices.get(&record.device),
        ) else {
            continue;
        };
        let (pid, tid) = tracks.thread(record.thread);
        *id += 1;
        events.push(json!({
            "ph": "s", "cat": "flow", "name": "io done", "id": *id,
            "pid": MACHINE_PID, "tid": first + u64::from(channel),
            "ts": micros(done.0.saturating_sub(1)),
        }));
        events.push(json!({
            "ph": "f", "bp": "e", "cat": "flow", "name": "io done", "id": *id,
            "pid": pid, "tid": tid, "ts": micros(done.0),
        }));
    }
}

/// Counters: threads ready for a CPU (asyncio tasks are not: they wait for
/// their loop), and memory in use.
fn counters(trace: &Trace, events: &mut Events<'_>) {
    let mut ready = vec![false; trace.threads.len()];
    let mut count = 0i64;
    let mut last: Option<(Time, i64)> = None;
    let mut written: Option<i64> = None;
    let push = |events: &mut Events<'_>, (time, value): (Time, i64)| {
        events.push(json!({
            "ph": "C", "pid": MACHINE_PID, "name": "ready threads",
            "ts": micros(time.0), "args": { "ready": value },
        }));
    };
    for change in &trace.states {
        let t = change.thread().index();
        if trace.threads[t].task_of.is_some() {
            continue;
        }
        let now = change.state() == ThreadState::Ready;
        if now != ready[t] {
            ready[t] = now;
            count += if now { 1 } else { -1 };
            // One sample per instant: the count once the instant is over,
            // and only when it differs from the last one written.
            if let Some((time, value)) = last.filter(|&(time, _)| time != change.time()) {
                if written != Some(value) {
                    push(events, (time, value));
                    written = Some(value);
                }
            }
            last = Some((change.time(), count));
        }
    }
    if let Some((time, value)) = last.filter(|&(_, value)| written != Some(value)) {
        push(events, (time, value));
    }
    for sample in &trace.memory {
        events.push(json!({
            "ph": "C", "pid": MACHINE_PID, "name": "memory",
            "ts": micros(sample.time.0), "args": { "bytes": sample.used },
        }));
    }
}

/// Instants: the deadlock (the whole timeline), each race (on the thread
/// of its second access) and the caller's marks.
fn instants(trace: &Trace, tracks: &Tracks, options: &PerfettoOptions, events: &mut Events<'_>) {
    let global = |name: &str, time: Time, args: Value| {
        json!({
            "ph": "i", "s": "g", "pid": MACHINE_PID, "tid": tracks.cpus.first().copied().unwrap_or(1),
            "name": name, "ts": micros(time.0), "args": args,
        })
    };
    if let Some(deadlock) = &trace.deadlock {
        let cycle: Vec<String> = deadlock
            .cycle
            .iter()
            .map(|step| {
                let thread = &trace.threads[step.thread.index()].name;
                let target = match step.target {
                    WaitTarget::Resource(r) => format!("'{}'", trace.resource_name(r)),
                    WaitTarget::Thread(t) => format!("thread '{}'", trace.threads[t.index()].name),
                };
                format!("'{thread}' waits for {target}{}", trace.at(step.origin))
            })
            .collect();
        events.push(global("deadlock", deadlock.time, json!({ "cycle": cycle })));
    }
    for race in &trace.races {
        let variable = trace
            .variables
            .get(race.variable.index())
            .map_or("?", |v| v.name.as_str());
        let access = |a: &crate::trace::RaceAccess| {
            format!(
                "{:?} by '{}' at {}{}",
                a.kind,
                trace.threads[a.thread.index()].name,
                a.time,
                trace.at(a.origin)
            )
        };
        let (pid, tid) = tracks.thread(race.second.thread);
        events.push(json!({
            "ph": "i", "s": "t", "pid": pid, "tid": tid,
            "name": format!("race on '{variable}'"), "ts": micros(race.second.time.0),
            "args": { "first": access(&race.first), "second": access(&race.second) },
        }));
    }
    for mark in &options.marks {
        match mark.thread {
            Some(thread) => {
                let (pid, tid) = tracks.thread(thread);
                events.push(json!({
                    "ph": "i", "s": "t", "pid": pid, "tid": tid,
                    "name": mark.name, "ts": micros(mark.time.0), "args": {},
                }));
            }
            None => events.push(global(&mark.name, mark.time, json!({}))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{us, Machine, MutexOptions, Simulation};

    #[test]
    fn timestamps_keep_every_nanosecond() {
        assert_eq!(micros(0).to_string(), "0.0");
        assert_eq!(micros(1).to_string(), "0.001");
        assert_eq!(micros(1_234_567).to_string(), "1234.567");
        // 1.4 days of simulated time, still to the nanosecond.
        assert_eq!(micros(123_456_789_012_345).to_string(), "123456789012.345");
    }

    #[test]
    fn a_lock_handed_over_is_a_flow_and_the_export_is_deterministic() {
        let export = || {
            let machine = Machine {
                cpus: 2,
                ..Machine::default()
            };
            let mut sim = Simulation::new(machine).unwrap();
            let m = sim.mutex("m", MutexOptions::default());
            for name in ["a", "b"] {
                sim.add_thread(name, move |ctx| {
                    ctx.lock(m);
                    ctx.compute(us(1500));
                    ctx.unlock(m);
                });
            }
            let run = sim.run();
            perfetto(&run.trace, &PerfettoOptions::default())
        };
        let text = export();
        assert_eq!(text, export());
        assert!(text.contains(r#""name":"hand-off","ph":"s""#), "{text}");
        assert!(text.contains(r#""name":"lock 'm'","ph":"X""#), "{text}");
        assert!(text.contains(r#""dur":1500.0"#), "{text}");
    }
}
