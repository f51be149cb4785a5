//! The kernel side of I/O: requests enter their device through an event of
//! the instant they were submitted (so the chooser orders same-instant
//! arrivals), complete at an event of their own, and wake what watches them:
//! threads in `wait` or blocking I/O, and epoll sets. Channels report their
//! readiness to epoll sets the same way. The queueing rules are
//! `model::io`'s; this file only routes to them and carries out their answer.

use std::collections::BTreeMap;

use super::{Engine, Event};
use crate::error::Misuse;
use crate::ids::{ProcessId, ResourceId, ThreadId};
use crate::kernel::context::{Response, SourceRef};
use crate::model::io::{Device, DeviceOptions, Epoll, IoHandle, IoId, PollKey, Pollable};
use crate::model::sync::Resource;
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::Span;
use crate::trace::{DeviceInfo, IoRecord};

/// Who is told when a request completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Watcher {
    /// A thread blocked until it completes.
    Thread(ThreadId),
    /// An epoll set that holds it.
    Epoll(ResourceId),
}

/// The watchers of every request (indexed like `trace.io`) and of channels'
/// readiness. Most requests have one watcher or none: it is kept inline, the
/// rare others aside.
#[derive(Debug, Default)]
pub(super) struct Watches {
    first: Vec<Option<Watcher>>,
    more: BTreeMap<IoId, Vec<Watcher>>,
    /// Epoll sets waiting for a channel to become readable or writable.
    channels: BTreeMap<ResourceId, Vec<(ResourceId, PollKey)>>,
}

impl Watches {
    fn watch(&mut self, io: IoId, watcher: Watcher) {
        match &mut self.first[io.index()] {
            slot @ None => *slot = Some(watcher),
            Some(_) => self.more.entry(io).or_default().push(watcher),
        }
    }

    fn take(&mut self, io: IoId, out: &mut Vec<Watcher>) {
        out.extend(self.first[io.index()].take());
        if !self.more.is_empty() {
            out.extend(self.more.remove(&io).into_iter().flatten());
        }
    }
}

impl Engine {
    /// Declares a device.
    pub(crate) fn add_device(&mut self, name: &str, options: DeviceOptions) -> ResourceId {
        let device = Device::new(options);
        let options = device.options;
        let id = self.add_resource(name, Resource::Device(Box::new(device)));
        self.trace.devices.push(DeviceInfo {
            resource: id,
            options,
        });
        id
    }

    fn device(&mut self, id: ResourceId) -> Option<&mut Device> {
        match self.resources.get_mut(id.index()) {
            Some(Resource::Device(device)) => Some(device),
            _ => None,
        }
    }

    fn epoll(&mut self, id: ResourceId) -> &mut Epoll {
        match &mut self.resources[id.index()] {
            Resource::Epoll(epoll) => epoll,
            _ => unreachable!("checked to be an epoll"),
        }
    }

    /// Ends the run with a misuse unless `resource` is of the kind `is`
    /// accepts; `operation` names what was tried.
    fn expect_kind(
        &mut self,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
        operation: &'static str,
        is: impl Fn(&Resource) -> bool,
    ) -> bool {
        match self.resources.get(resource.index()) {
            Some(r) if is(r) => true,
            Some(_) => {
                let info = &self.trace.resources[resource.index()];
                let misuse = Misuse::WrongKind {
                    resource: info.name.clone(),
                    kind: info.kind.name(),
                    operation,
                };
                self.misuse(thread, origin, misuse);
                false
            }
            None => {
                self.misuse(thread, origin, Misuse::UnknownResource(resource.0));
                false
            }
        }
    }

    /// Ends the run with a misuse unless `thread` belongs to `owner`.
    pub(super) fn same_process(
        &mut self,
        thread: ThreadId,
        owner: ProcessId,
        origin: SourceRef,
        what: impl FnOnce(&Self) -> String,
    ) -> bool {
        let accessor = self.threads[thread.index()].process;
        if accessor == owner {
            return true;
        }
        let misuse = Misuse::ForeignHandle {
            what: what(self),
            owner: self.trace.processes[owner.index()].name.clone(),
            accessor: self.trace.processes[accessor.index()].name.clone(),
        };
        self.misuse(thread, origin, misuse);
        false
    }

    /// The request a handle names, checked to exist and to belong to the
    /// thread's process.
    fn own_request(&mut self, thread: ThreadId, io: IoId, origin: SourceRef) -> Option<IoRecord> {
        let Some(&record) = self.trace.io.get(io.index()) else {
            self.misuse(thread, origin, Misuse::UnknownIo(io.0));
            return None;
        };
        let owner = self.threads[record.thread.index()].process;
        self.same_process(thread, owner, origin, |e| {
            format!(
                "the I/O handle on '{}'",
                e.trace.resource_name(record.device)
            )
        })
        .then_some(record)
    }

    /// `submit` (or blocking `io` when `blocking`) of the thread on `cpu`.
    /// Returns true when the thread keeps the CPU.
    #[inline(never)]
    pub(super) fn submit(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        device: ResourceId,
        bytes: u64,
        blocking: bool,
        origin: SourceRef,
    ) -> bool {
        let operation = if blocking { "io" } else { "submit" };
        if !self.expect_kind(thread, device, origin, operation, |r| {
            matches!(r, Resource::Device(_))
        }) {
            return false;
        }
        let (id, interned) = self.new_request(thread, device, bytes, origin, None);
        if blocking {
            self.watches.watch(id, Watcher::Thread(thread));
            self.block(cpu, thread, BlockReason::Io(device), Some(interned));
            return false;
        }
        self.threads[thread.index()].pending = Some(Response::Int(i64::from(id.0)));
        self.zero_time(cpu, thread)
    }

    /// A task's `await_io`: its loop thread submits the request and watches
    /// it in the loop's epoll, in one step (`submit` then `epoll_add`,
    /// without the scheduling point between them, which no script can
    /// observe). The request is drawn as the task's.
    pub(super) fn submit_polled(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        (device, bytes, epoll, task): (ResourceId, u64, ResourceId, Option<ThreadId>),
        origin: SourceRef,
    ) -> bool {
        if !self.expect_kind(thread, device, origin, "await_io", |r| {
            matches!(r, Resource::Device(_))
        }) || !self.own_epoll(thread, epoll, origin, "add")
        {
            return false;
        }
        let (id, _) = self.new_request(thread, device, bytes, origin, task);
        if !self.epoll(epoll).add(PollKey::Io(id), false) {
            self.misuse(thread, origin, Misuse::AlreadyPolled);
            return false;
        }
        self.watches.watch(id, Watcher::Epoll(epoll));
        self.threads[thread.index()].pending = Some(Response::Int(i64::from(id.0)));
        self.zero_time(cpu, thread)
    }

    /// Records a request of `thread` (for `task`, if a task awaits it) and
    /// sends it to its device at this instant; returns its id and origin.
    fn new_request(
        &mut self,
        thread: ThreadId,
        device: ResourceId,
        bytes: u64,
        origin: SourceRef,
        task: Option<ThreadId>,
    ) -> (IoId, crate::ids::OriginId) {
        let id = IoId(self.trace.io.len() as u32);
        let interned = self.intern(thread, origin);
        self.trace.io.push(IoRecord {
            device,
            thread,
            bytes,
            submitted: self.now,
            started: None,
            completed: None,
            origin: Some(interned),
            task,
        });
        self.watches.first.push(None);
        self.queue.push(self.now, Event::IoArrive { io: id });
        (id, interned)
    }

    /// A request reaches its device: a free channel serves it, or it queues.
    pub(super) fn io_arrive(&mut self, io: IoId) {
        let device = self.trace.io[io.index()].device;
        if let Some(channel) = self.device(device).expect("a device").arrive(io) {
            self.io_start(io, device, channel);
        }
    }

    fn io_start(&mut self, io: IoId, device: ResourceId, channel: u16) {
        let bytes = self.trace.io[io.index()].bytes;
        let service = self
            .device(device)
            .expect("a device")
            .options
            .service_time(bytes);
        let service = self.jittered(service);
        self.trace.io[io.index()].started = Some((self.now, channel));
        self.queue.push(self.now + service, Event::IoDone { io });
    }

    /// A request completes: its channel takes the next queued request, and
    /// its watchers hear of it.
    pub(super) fn io_done(&mut self, io: IoId) {
        let record = &mut self.trace.io[io.index()];
        record.completed = Some(self.now);
        let (device, channel) = (record.device, record.started.expect("in service").1);
        if let Some(row) = record.task {
            // An awaiting task is ready from now, even if its loop only
            // gets to it later.
            self.drain_task_log();
            if matches!(self.threads[row.index()].state, ThreadState::Blocked(_)) {
                self.record(row, ThreadState::Ready, None, None);
            }
        }
        if let Some(next) = self.device(device).expect("a device").finish(channel) {
            self.io_start(next, device, channel);
        }
        let mut watchers = std::mem::take(&mut self.watchers_scratch);
        self.watches.take(io, &mut watchers);
        for watcher in watchers.drain(..) {
            match watcher {
                Watcher::Thread(thread) => self.wake(thread, Response::Resume),
                Watcher::Epoll(epoll) => self.epoll_fire(epoll, PollKey::Io(io)),
            }
        }
        self.watchers_scratch = watchers;
    }

    /// `h.wait()`: returns at once when the request completed, else blocks.
    #[inline(never)]
    pub(super) fn io_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        io: IoId,
        origin: SourceRef,
    ) -> bool {
        let Some(record) = self.own_request(thread, io, origin) else {
            return false;
        };
        if record.completed.is_some() {
            return self.zero_time(cpu, thread);
        }
        self.watches.watch(io, Watcher::Thread(thread));
        let origin = self.intern(thread, origin);
        self.block(cpu, thread, BlockReason::Io(record.device), Some(origin));
        false
    }

    /// `h.ready()`.
    pub(super) fn io_ready(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        io: IoId,
        origin: SourceRef,
    ) -> bool {
        let Some(record) = self.own_request(thread, io, origin) else {
            return false;
        };
        self.threads[thread.index()].pending = Some(Response::Bool(record.completed.is_some()));
        self.zero_time(cpu, thread)
    }

    // ----- epoll ------------------------------------------------------------

    /// `epoll()`: a new epoll instance of the thread's process.
    pub(super) fn epoll_create(&mut self, cpu: usize, thread: ThreadId) -> bool {
        let process = self.threads[thread.index()].process;
        let count = self
            .trace
            .resources
            .iter()
            .filter(|r| r.kind == crate::trace::ResourceKind::Epoll)
            .count();
        let name = format!("epoll{}", count + 1);
        let id = self.add_resource(&name, Resource::Epoll(Box::new(Epoll::new(process))));
        self.threads[thread.index()].pending = Some(Response::Int(i64::from(id.0)));
        self.zero_time(cpu, thread)
    }

    /// Checks that `epoll` is an epoll of the thread's process.
    fn own_epoll(
        &mut self,
        thread: ThreadId,
        epoll: ResourceId,
        origin: SourceRef,
        operation: &'static str,
    ) -> bool {
        if !self.expect_kind(thread, epoll, origin, operation, |r| {
            matches!(r, Resource::Epoll(_))
        }) {
            return false;
        }
        let owner = self.epoll(epoll).process;
        self.same_process(thread, owner, origin, |e| {
            format!("epoll '{}'", e.trace.resource_name(epoll))
        })
    }

    /// Whether a channel is readable (`write` false) or writable now.
    fn channel_ready(&self, channel: ResourceId, write: bool) -> bool {
        match &self.resources[channel.index()] {
            Resource::Channel {
                capacity,
                items,
                senders,
                receivers,
                ..
            } => {
                if write {
                    items.len() < *capacity || !receivers.is_empty()
                } else {
                    !items.is_empty() || !senders.is_empty()
                }
            }
            _ => false,
        }
    }

    /// `ep.add(h)`.
    #[inline(never)]
    pub(super) fn epoll_add(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        epoll: ResourceId,
        key: PollKey,
        origin: SourceRef,
    ) -> bool {
        if !self.own_epoll(thread, epoll, origin, "add") {
            return false;
        }
        let ready = match key {
            PollKey::Io(io) => {
                let Some(record) = self.own_request(thread, io, origin) else {
                    return false;
                };
                record.completed.is_some()
            }
            PollKey::Readable(channel) | PollKey::Writable(channel) => {
                if !self.expect_kind(thread, channel, origin, "readiness", |r| {
                    matches!(r, Resource::Channel { .. })
                }) {
                    return false;
                }
                self.channel_ready(channel, matches!(key, PollKey::Writable(_)))
            }
        };
        if !self.epoll(epoll).add(key, ready) {
            self.misuse(thread, origin, Misuse::AlreadyPolled);
            return false;
        }
        if ready {
            self.epoll_wake(epoll);
        } else {
            match key {
                PollKey::Io(io) => self.watches.watch(io, Watcher::Epoll(epoll)),
                PollKey::Readable(channel) | PollKey::Writable(channel) => self
                    .watches
                    .channels
                    .entry(channel)
                    .or_default()
                    .push((epoll, key)),
            }
        }
        self.zero_time(cpu, thread)
    }

    /// `ep.remove(h)`: true when it was in the set.
    pub(super) fn epoll_remove(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        epoll: ResourceId,
        key: PollKey,
        origin: SourceRef,
    ) -> bool {
        if !self.own_epoll(thread, epoll, origin, "remove") {
            return false;
        }
        let removed = self.epoll(epoll).remove(key);
        self.threads[thread.index()].pending = Some(Response::Bool(removed));
        self.zero_time(cpu, thread)
    }

    /// `ep.len()`.
    pub(super) fn epoll_len(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        epoll: ResourceId,
        origin: SourceRef,
    ) -> bool {
        if !self.own_epoll(thread, epoll, origin, "len") {
            return false;
        }
        let len = self.epoll(epoll).len();
        self.threads[thread.index()].pending = Some(Response::Int(len as i64));
        self.zero_time(cpu, thread)
    }

    /// `ep.wait(timeout)` (`Span::MAX`: no timeout).
    #[inline(never)]
    pub(super) fn epoll_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        epoll: ResourceId,
        timeout: Span,
        origin: SourceRef,
    ) -> bool {
        if !self.own_epoll(thread, epoll, origin, "wait") {
            return false;
        }
        let e = self.epoll(epoll);
        if e.has_ready() || timeout.is_zero() {
            let ready = self.collect_ready(epoll);
            self.threads[thread.index()].pending = Some(ready);
            return self.zero_time(cpu, thread);
        }
        if e.len() == 0 && timeout == Span::MAX {
            self.misuse(thread, origin, Misuse::EmptyEpoll);
            return false;
        }
        if e.waiter.is_some() {
            let name = self.trace.resource_name(epoll).to_string();
            self.misuse(thread, origin, Misuse::EpollBusy(name));
            return false;
        }
        e.waiter = Some(thread);
        let origin = self.intern(thread, origin);
        self.block(cpu, thread, BlockReason::Epoll(epoll), Some(origin));
        if timeout != Span::MAX {
            let generation = self.threads[thread.index()].wake_generation;
            self.queue
                .push(self.now + timeout, Event::Wake { thread, generation });
        }
        false
    }

    /// The timeout of a thread waiting in epoll passed.
    pub(super) fn epoll_timeout(&mut self, thread: ThreadId, epoll: ResourceId) {
        self.epoll(epoll).waiter = None;
        self.wake(thread, Response::EpollReady(epoll));
    }

    /// `key` became ready: it moves to the set's ready list, and the set's
    /// waiter wakes.
    fn epoll_fire(&mut self, epoll: ResourceId, key: PollKey) {
        if self.epoll(epoll).fire(key) {
            self.epoll_wake(epoll);
        }
    }

    /// Wakes the thread waiting on `epoll`, if one is, once the events
    /// already at this instant are handled: what else becomes ready in this
    /// instant comes back in the same wait, as a kernel's epoll batches
    /// what is ready when the waiter runs.
    fn epoll_wake(&mut self, epoll: ResourceId) {
        let e = self.epoll(epoll);
        if e.waiter.is_some() && !std::mem::replace(&mut e.wake_pending, true) {
            self.queue.push(self.now, Event::EpollWake { epoll });
        }
    }

    /// The wake-up [`Engine::epoll_wake`] scheduled: the waiter (if it still
    /// waits, and something is ready) resumes and collects the ready list
    /// when it runs again.
    pub(super) fn epoll_wake_now(&mut self, epoll: ResourceId) {
        let e = self.epoll(epoll);
        e.wake_pending = false;
        if !e.has_ready() {
            return;
        }
        if let Some(waiter) = e.waiter.take() {
            self.wake(waiter, Response::EpollReady(epoll));
        }
    }

    /// The thread waiting on `epoll`, if any.
    pub(super) fn epoll_waiter(&self, epoll: ResourceId) -> Option<ThreadId> {
        match &self.resources[epoll.index()] {
            Resource::Epoll(e) => e.waiter,
            _ => None,
        }
    }

    /// The ready list of `epoll`, taken, as the answer to a wait.
    pub(super) fn collect_ready(&mut self, epoll: ResourceId) -> Response {
        let keys = self.epoll(epoll).take_ready();
        let ready = keys
            .into_iter()
            .map(|key| match key {
                PollKey::Io(id) => {
                    let record = &self.trace.io[id.index()];
                    Pollable::Io(IoHandle {
                        id,
                        device: record.device,
                        bytes: record.bytes,
                    })
                }
                PollKey::Readable(channel) => Pollable::Readable(channel),
                PollKey::Writable(channel) => Pollable::Writable(channel),
            })
            .collect();
        Response::Ready(Box::new(ready))
    }

    /// A channel's contents changed: epoll sets waiting for it to become
    /// readable or writable hear of it if it now is.
    pub(super) fn channel_changed(&mut self, channel: ResourceId) {
        if self.watches.channels.is_empty() {
            return;
        }
        let Some(mut watching) = self.watches.channels.remove(&channel) else {
            return;
        };
        let readable = self.channel_ready(channel, false);
        let writable = self.channel_ready(channel, true);
        let mut fired = Vec::new();
        watching.retain(|&(epoll, key)| {
            let now = match key {
                PollKey::Readable(_) => readable,
                _ => writable,
            };
            if now {
                fired.push((epoll, key));
            }
            !now
        });
        if !watching.is_empty() {
            self.watches.channels.insert(channel, watching);
        }
        for (epoll, key) in fired {
            self.epoll_fire(epoll, key);
        }
    }

    /// Whether a blocked thread waits in epoll (its timer is a timeout).
    pub(super) fn epoll_of(&self, thread: ThreadId) -> Option<ResourceId> {
        match self.threads[thread.index()].state {
            ThreadState::Blocked(BlockReason::Epoll(epoll)) => Some(epoll),
            _ => None,
        }
    }
}
