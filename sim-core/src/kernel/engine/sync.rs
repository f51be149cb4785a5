//! The kernel side of synchronization: blocking and waking threads on the
//! resources of `model::sync`, choosing which waiter wins through the
//! chooser, recording every acquisition, priority inheritance, and the
//! wait-for graph that finds deadlocks the moment a cycle closes.

use std::collections::HashMap;

use super::{Engine, Phase, Work};
use crate::analysis::race::SyncObject;
use crate::error::Misuse;
use crate::ids::{ResourceId, ThreadId};
use crate::kernel::context::{Response, SourceRef, SyncOp};
use crate::kernel::deadlock::find_cycle;
use crate::kernel::wait::{WaitQueue, Waiter};
use crate::model::sync::{Message, Resource};
use crate::model::thread::{BlockReason, ThreadState};
use crate::time::{Span, Time};
use crate::trace::{Deadlock, ResourceInfo, SyncAction, SyncEvent, WaitStep, WaitTarget};

impl Engine {
    /// Declares a resource.
    pub(crate) fn add_resource(&mut self, name: &str, resource: Resource) -> ResourceId {
        let id = ResourceId(self.resources.len() as u32);
        self.trace.resources.push(ResourceInfo {
            name: name.to_string(),
            kind: resource.kind(),
            internal: false,
        });
        self.resources.push(resource);
        id
    }

    /// Records a synchronization event and the happens-before edge it makes:
    /// releases, sends and notifications publish the thread's past;
    /// acquisitions and receives take it in.
    fn sync_event(&mut self, thread: ThreadId, resource: ResourceId, action: SyncAction) {
        let object = SyncObject::Resource(resource);
        match action {
            SyncAction::Acquired { .. } | SyncAction::Received => {
                self.races.acquire(thread, object)
            }
            SyncAction::Released | SyncAction::Sent | SyncAction::Notified { .. } => {
                self.races.release(thread, object)
            }
        }
        self.trace.sync.push(SyncEvent {
            time: self.now,
            thread,
            resource,
            action,
        });
    }

    fn acquired(&mut self, thread: ThreadId, resource: ResourceId, since: Time, shared: bool) {
        let waited = self.now - since;
        self.sync_event(thread, resource, SyncAction::Acquired { waited, shared });
    }

    fn resource_misuse(
        &mut self,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
        make: impl FnOnce(String, &'static str) -> Misuse,
    ) -> bool {
        let info = &self.trace.resources[resource.index()];
        let misuse = make(info.name.clone(), info.kind.name());
        self.misuse(thread, origin, misuse);
        false
    }

    /// Takes `queue`'s winner through the chooser, with the queue borrowed
    /// out of the resource meanwhile.
    fn pick_from(
        &mut self,
        resource: ResourceId,
        queue: impl Fn(&mut Resource) -> &mut WaitQueue,
    ) -> Option<Waiter> {
        let mut waiters = std::mem::take(queue(&mut self.resources[resource.index()]));
        let picked = self.pick_waiter(&mut waiters);
        *queue(&mut self.resources[resource.index()]) = waiters;
        picked
    }

    /// Blocks the thread on `cpu` for `reason`, recording where it blocked.
    fn wait_on(&mut self, cpu: usize, thread: ThreadId, reason: BlockReason, origin: SourceRef) {
        let origin = self.intern(thread, origin);
        self.block(cpu, thread, reason, Some(origin));
    }

    /// A synchronization request of the thread on `cpu`. Returns true when
    /// the thread keeps the CPU. Kept out of line so that the hot loop of
    /// compute and sleep stays small.
    #[inline(never)]
    pub(super) fn sync_call(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        op: SyncOp,
        origin: SourceRef,
    ) -> bool {
        if resource.index() >= self.resources.len() {
            self.misuse(thread, origin, Misuse::UnknownResource(resource.0));
            return false;
        }
        let kind = self.resources[resource.index()].kind();
        use crate::trace::ResourceKind as K;
        match (op, kind) {
            (SyncOp::Lock, K::Mutex | K::RLock) => self.mutex_lock(cpu, thread, resource, origin),
            (SyncOp::Lock, K::Spinlock) => self.spin_lock(cpu, thread, resource, origin),
            (SyncOp::TryLock, K::Mutex | K::RLock | K::Spinlock) => {
                self.try_lock(cpu, thread, resource)
            }
            (SyncOp::Unlock, K::Mutex | K::RLock) => {
                if !self.holds(thread, resource) {
                    return self.resource_misuse(thread, resource, origin, not_owner);
                }
                if !self.leave_reentry(resource) {
                    self.mutex_unlock(thread, resource);
                }
                self.proceed(cpu, thread)
            }
            (SyncOp::Unlock, K::Spinlock) => self.spin_unlock(cpu, thread, resource, origin),
            (SyncOp::Acquire, K::Semaphore) => {
                self.sem_acquire(cpu, thread, resource, None, origin)
            }
            (SyncOp::TryAcquire, K::Semaphore) => {
                self.sem_acquire(cpu, thread, resource, Some(Span::ZERO), origin)
            }
            (SyncOp::Permits, K::Semaphore) => {
                let Resource::Semaphore { permits, .. } = &self.resources[resource.index()] else {
                    unreachable!("checked above")
                };
                let permits = i64::try_from(*permits).unwrap_or(i64::MAX);
                self.threads[thread.index()].pending = Some(Response::Int(permits));
                self.proceed(cpu, thread)
            }
            (SyncOp::Release, K::Semaphore) => self.sem_release(cpu, thread, resource, origin),
            (SyncOp::ReadLock, K::RwLock) => self.rw_lock(cpu, thread, resource, false, origin),
            (SyncOp::WriteLock, K::RwLock) => self.rw_lock(cpu, thread, resource, true, origin),
            (SyncOp::ReadUnlock, K::RwLock) => self.rw_unlock(cpu, thread, resource, false, origin),
            (SyncOp::WriteUnlock, K::RwLock) => self.rw_unlock(cpu, thread, resource, true, origin),
            (SyncOp::Wait(mutex), K::Condvar) => {
                self.cond_wait(cpu, thread, resource, mutex, None, origin)
            }
            (SyncOp::NotifyOne, K::Condvar) => self.notify(cpu, thread, resource, false),
            (SyncOp::NotifyAll, K::Condvar) => self.notify(cpu, thread, resource, true),
            (SyncOp::BarrierWait, K::Barrier) => self.barrier_wait(cpu, thread, resource, origin),
            (SyncOp::Set, K::Event) => self.event_set(cpu, thread, resource),
            (SyncOp::Clear, K::Event) => {
                if let Resource::Event { set, .. } = &mut self.resources[resource.index()] {
                    *set = false;
                }
                self.proceed(cpu, thread)
            }
            (SyncOp::IsSet, K::Event) => {
                let set = matches!(
                    self.resources[resource.index()],
                    Resource::Event { set: true, .. }
                );
                if set {
                    self.races.acquire(thread, SyncObject::Resource(resource));
                }
                self.threads[thread.index()].pending = Some(Response::Bool(set));
                self.proceed(cpu, thread)
            }
            (SyncOp::EventWait, K::Event) => self.event_wait(cpu, thread, resource, None, origin),
            (SyncOp::FutureWait, K::Event) => self.future_wait(cpu, thread, resource, None, origin),
            (SyncOp::Signal, K::Countdown) => self.signal(cpu, thread, resource, origin),
            (SyncOp::CountdownWait, K::Countdown) => {
                self.countdown_wait(cpu, thread, resource, origin)
            }
            (SyncOp::Recv, K::Channel) => self.recv(cpu, thread, resource, origin),
            (op, _) => {
                let operation = op_name(op);
                self.resource_misuse(thread, resource, origin, |resource, kind| {
                    Misuse::WrongKind {
                        resource,
                        kind,
                        operation,
                    }
                })
            }
        }
    }

    /// A synchronization wait that gives up after `timeout` and answers
    /// whether it got what it waited for.
    #[inline(never)]
    pub(super) fn timed_sync_call(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        op: SyncOp,
        timeout: Span,
        origin: SourceRef,
    ) -> bool {
        let kind = self.resources.get(resource.index()).map(Resource::kind);
        use crate::trace::ResourceKind as K;
        match (op, kind) {
            (SyncOp::Acquire, Some(K::Semaphore)) => {
                self.sem_acquire(cpu, thread, resource, Some(timeout), origin)
            }
            (SyncOp::Wait(mutex), Some(K::Condvar)) => {
                self.cond_wait(cpu, thread, resource, mutex, Some(timeout), origin)
            }
            (SyncOp::EventWait, Some(K::Event)) => {
                self.event_wait(cpu, thread, resource, Some(timeout), origin)
            }
            (SyncOp::FutureWait, Some(K::Event)) => {
                self.future_wait(cpu, thread, resource, Some(timeout), origin)
            }
            _ => self.sync_call(cpu, thread, resource, op, origin),
        }
    }

    /// After a zero-time operation that may have woken (and been preempted
    /// by) another thread: true when the thread keeps its CPU.
    fn proceed(&mut self, cpu: usize, thread: ThreadId) -> bool {
        if self.threads[thread.index()].cpu != Some(cpu) {
            return false;
        }
        self.zero_time(cpu, thread)
    }

    fn holds(&self, thread: ThreadId, resource: ResourceId) -> bool {
        match &self.resources[resource.index()] {
            Resource::Mutex { owner, .. } | Resource::Spinlock { owner, .. } => {
                *owner == Some(thread)
            }
            _ => false,
        }
    }

    // ----- mutex ------------------------------------------------------------

    fn mutex_lock(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
    ) -> bool {
        let since = self
            .barging_since
            .get_mut(thread.index())
            .and_then(Option::take)
            .unwrap_or(self.now);
        let Resource::Mutex {
            owner,
            waiters,
            options,
            reentrant,
            depth,
        } = &mut self.resources[resource.index()]
        else {
            unreachable!("checked by sync_call")
        };
        match *owner {
            None => {
                *owner = Some(thread);
                self.acquired(thread, resource, since, false);
                self.proceed(cpu, thread)
            }
            // Taking a reentrant lock again is no acquisition: nothing to
            // wait for, and no one else's past to take in.
            Some(holder) if holder == thread && *reentrant => {
                *depth += 1;
                self.proceed(cpu, thread)
            }
            Some(holder) if holder == thread => {
                self.resource_misuse(thread, resource, origin, relock)
            }
            Some(holder) => {
                waiters.push(thread, since);
                let inherit = options.inherit;
                self.wait_on(cpu, thread, BlockReason::Lock(resource), origin);
                self.waiting_for_mutex(thread, holder, inherit);
                false
            }
        }
    }

    /// Releases a mutex `thread` holds: hands it to a waiter (fair) or frees
    /// it and wakes every waiter to race for it (barging).
    fn mutex_unlock(&mut self, thread: ThreadId, resource: ResourceId) {
        self.sync_event(thread, resource, SyncAction::Released);
        let Resource::Mutex { owner, options, .. } = &mut self.resources[resource.index()] else {
            unreachable!("a mutex")
        };
        *owner = None;
        let options = *options;
        if options.inherit {
            // Back to its own priority before a woken waiter can preempt it.
            self.inherit_priority(thread);
        }
        if options.fair {
            let picked = self.pick_from(resource, |r| match r {
                Resource::Mutex { waiters, .. } => waiters,
                _ => unreachable!("a mutex"),
            });
            if let Some(winner) = picked {
                self.give_mutex(winner.thread, resource, winner.since);
            }
        } else {
            let Resource::Mutex { waiters, .. } = &mut self.resources[resource.index()] else {
                unreachable!("a mutex")
            };
            let woken: Vec<Waiter> = waiters.drain().collect();
            for waiter in woken {
                let t = waiter.thread.index();
                if self.barging_since.len() <= t {
                    self.barging_since.resize(t + 1, None);
                }
                self.barging_since[t] = Some(waiter.since);
                self.wake(waiter.thread, Response::Retry);
            }
        }
    }

    /// An unlock of a reentrant lock taken more than once: one level
    /// less, and it stays held. False for the last level and for mutexes.
    fn leave_reentry(&mut self, resource: ResourceId) -> bool {
        match &mut self.resources[resource.index()] {
            Resource::Mutex { depth, .. } if *depth > 0 => {
                *depth -= 1;
                true
            }
            _ => false,
        }
    }

    /// `thread` now waits for a mutex `holder` holds: the holder inherits
    /// its priority if the mutex says so, and the wait may close a cycle.
    fn waiting_for_mutex(&mut self, thread: ThreadId, holder: ThreadId, inherit: bool) {
        if inherit {
            self.inherit_priority(holder);
        }
        self.check_deadlock(thread);
    }

    /// Makes a blocked `thread` the owner of a free mutex and wakes it.
    fn give_mutex(&mut self, thread: ThreadId, resource: ResourceId, since: Time) {
        let Resource::Mutex { owner, options, .. } = &mut self.resources[resource.index()] else {
            unreachable!("a mutex")
        };
        *owner = Some(thread);
        let inherit = options.inherit;
        self.acquired(thread, resource, since, false);
        self.wake(thread, Response::Resume);
        if inherit {
            self.inherit_priority(thread);
        }
    }

    /// Sets `thread`'s priority to the highest of its own and those of the
    /// threads waiting for the inheriting mutexes it holds.
    fn inherit_priority(&mut self, thread: ThreadId) {
        let base = self.trace.threads[thread.index()].priority;
        let mut effective = base;
        for resource in &self.resources {
            if let Resource::Mutex {
                owner: Some(owner),
                options,
                waiters,
                ..
            } = resource
            {
                if *owner == thread && options.inherit {
                    for waiter in waiters.iter() {
                        effective = effective.max(self.policy.priority(waiter.thread));
                    }
                }
            }
        }
        if effective == self.policy.priority(thread) {
            return;
        }
        self.policy.set_priority(thread, effective);
        if self.threads[thread.index()].state == ThreadState::Ready && self.policy.preemptive() {
            self.settle_all();
            self.preempt_for(thread);
        }
    }

    fn try_lock(&mut self, cpu: usize, thread: ThreadId, resource: ResourceId) -> bool {
        let (taken, again) = match &mut self.resources[resource.index()] {
            Resource::Mutex { owner, .. } | Resource::Spinlock { owner, .. } if owner.is_none() => {
                *owner = Some(thread);
                (true, false)
            }
            Resource::Mutex {
                owner: Some(holder),
                reentrant: true,
                depth,
                ..
            } if *holder == thread => {
                *depth += 1;
                (true, true)
            }
            _ => (false, false),
        };
        if taken && !again {
            self.acquired(thread, resource, self.now, false);
        }
        self.threads[thread.index()].pending = Some(Response::Bool(taken));
        self.proceed(cpu, thread)
    }

    // ----- spinlock ---------------------------------------------------------

    fn spin_lock(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
    ) -> bool {
        let Resource::Spinlock { owner, spinners } = &mut self.resources[resource.index()] else {
            unreachable!("checked by sync_call")
        };
        match *owner {
            None => {
                *owner = Some(thread);
                self.acquired(thread, resource, self.now, false);
                self.proceed(cpu, thread)
            }
            Some(holder) if holder == thread => {
                self.resource_misuse(thread, resource, origin, relock)
            }
            Some(_) => {
                spinners.push(thread, self.now);
                let origin = self.intern(thread, origin);
                self.threads[thread.index()].work = Work::Spin(resource);
                self.record(thread, ThreadState::Spin(resource), Some(cpu), Some(origin));
                self.check_deadlock(thread);
                true
            }
        }
    }

    /// The thread on `cpu` spins for `resource`: takes it if it is free,
    /// else keeps spinning until its slice ends. Returns true when the thread
    /// should be advanced further (it took the lock or got a new slice).
    #[inline(never)]
    pub(super) fn spin(&mut self, cpu: usize, thread: ThreadId, resource: ResourceId) -> bool {
        let Resource::Spinlock { owner, spinners } = &mut self.resources[resource.index()] else {
            unreachable!("spinning on a spinlock")
        };
        if owner.is_none() {
            *owner = Some(thread);
            let since = spinners
                .iter()
                .find(|w| w.thread == thread)
                .map_or(self.now, |w| w.since);
            spinners.remove(thread);
            self.acquired(thread, resource, since, false);
            self.threads[thread.index()].work = Work::None;
            self.threads[thread.index()].pending = Some(Response::Resume);
            self.record(thread, ThreadState::Running, Some(cpu), None);
            return true;
        }
        if self.cpus[cpu].slice_end <= self.now {
            return !self.expire(cpu);
        }
        if self.threads[thread.index()].state != ThreadState::Spin(resource) {
            self.record(thread, ThreadState::Spin(resource), Some(cpu), None);
        }
        let c = &mut self.cpus[cpu];
        c.segment_start = self.now;
        c.generation = c.generation.wrapping_add(1);
        if c.slice_end != Time::MAX {
            let generation = c.generation;
            let end = c.slice_end;
            self.queue.push(
                end,
                super::Event::CpuDone {
                    cpu: cpu as u16,
                    generation,
                },
            );
        }
        false
    }

    fn spin_unlock(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
    ) -> bool {
        if !self.holds(thread, resource) {
            return self.resource_misuse(thread, resource, origin, not_owner);
        }
        self.sync_event(thread, resource, SyncAction::Released);
        let Resource::Spinlock { owner, spinners } = &mut self.resources[resource.index()] else {
            unreachable!("checked by sync_call")
        };
        *owner = None;
        // Spinners on a CPU race for it; preempted ones retry when they run.
        let mut on_cpu = WaitQueue::new();
        for waiter in spinners.iter() {
            if self.threads[waiter.thread.index()].state == ThreadState::Spin(resource) {
                on_cpu.push(waiter.thread, waiter.since);
            }
        }
        if let Some(winner) = self.pick_waiter(&mut on_cpu) {
            let winner_cpu = self.threads[winner.thread.index()]
                .cpu
                .expect("a spinner on a CPU");
            self.settle(winner_cpu);
            // Its CPU ends the spin segment now and runs it on.
            let c = &mut self.cpus[winner_cpu];
            c.generation = c.generation.wrapping_add(1);
            c.segment_start = self.now;
            let generation = c.generation;
            debug_assert_eq!(c.phase, Phase::Running);
            self.queue.push(
                self.now,
                super::Event::CpuDone {
                    cpu: winner_cpu as u16,
                    generation,
                },
            );
        }
        self.proceed(cpu, thread)
    }

    // ----- semaphore --------------------------------------------------------

    /// `acquire`, with a timeout for `acquire(timeout)` (zero for
    /// `try_acquire`): a timed acquire answers whether it got a permit.
    fn sem_acquire(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        timeout: Option<Span>,
        origin: SourceRef,
    ) -> bool {
        let Resource::Semaphore {
            permits, waiters, ..
        } = &mut self.resources[resource.index()]
        else {
            unreachable!("checked by sync_call")
        };
        let answer = |got| timeout.map(|_| Response::Bool(got));
        if *permits > 0 {
            *permits -= 1;
            self.acquired(thread, resource, self.now, false);
            self.threads[thread.index()].pending = answer(true);
            return self.proceed(cpu, thread);
        }
        if timeout.is_some_and(Span::is_zero) {
            self.threads[thread.index()].pending = answer(false);
            return self.proceed(cpu, thread);
        }
        waiters.push(thread, self.now);
        self.wait_on(cpu, thread, BlockReason::Semaphore(resource), origin);
        if let Some(timeout) = timeout {
            self.set_timer(thread, timeout);
        }
        false
    }

    fn sem_release(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
    ) -> bool {
        if let Resource::Semaphore {
            permits,
            waiters,
            bound: Some(bound),
        } = &self.resources[resource.index()]
        {
            if waiters.is_empty() && *permits >= *bound {
                let bound = *bound;
                return self.resource_misuse(thread, resource, origin, |resource, _| {
                    Misuse::OverRelease { resource, bound }
                });
            }
        }
        self.sync_event(thread, resource, SyncAction::Released);
        let picked = self.pick_from(resource, |r| match r {
            Resource::Semaphore { waiters, .. } => waiters,
            _ => unreachable!("a semaphore"),
        });
        match picked {
            Some(winner) => {
                self.acquired(winner.thread, resource, winner.since, false);
                self.wake(winner.thread, Response::Resume);
            }
            None => {
                if let Resource::Semaphore { permits, .. } = &mut self.resources[resource.index()] {
                    *permits += 1;
                }
            }
        }
        self.proceed(cpu, thread)
    }

    // ----- timeouts ---------------------------------------------------------

    /// Wakes the blocked `thread` after `timeout` unless something else
    /// wakes it first (every wake moves its wake generation on, which makes
    /// the timer stale).
    fn set_timer(&mut self, thread: ThreadId, timeout: Span) {
        let generation = self.threads[thread.index()].wake_generation;
        self.queue.push(
            self.now + timeout,
            super::Event::Wake { thread, generation },
        );
    }

    /// A blocked thread's timer fired: a sleep ends, and a timed wait gives
    /// up: the thread leaves the wait queue and its operation answers
    /// false.
    pub(super) fn timer_fired(&mut self, thread: ThreadId) {
        if let Some(epoll) = self.epoll_of(thread) {
            return self.epoll_timeout(thread, epoll);
        }
        let resource = match self.threads[thread.index()].state {
            ThreadState::Blocked(
                BlockReason::Semaphore(r)
                | BlockReason::Condvar(r)
                | BlockReason::Event(r)
                | BlockReason::Future(r),
            ) => r,
            _ => return self.wake(thread, Response::Resume),
        };
        match &mut self.resources[resource.index()] {
            Resource::Semaphore { waiters, .. } | Resource::Event { waiters, .. } => {
                waiters.remove(thread);
            }
            // It takes its mutex back itself (see `Ctx::wait_timeout`).
            Resource::Condvar { waiters } => waiters.retain(|(w, _)| w.thread != thread),
            _ => unreachable!("a timed wait on a semaphore, a condvar or an event"),
        }
        self.wake(thread, Response::Bool(false));
    }

    // ----- reader-writer lock -----------------------------------------------

    fn rw_lock(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        write: bool,
        origin: SourceRef,
    ) -> bool {
        let lock = &mut self.resources[resource.index()];
        let admissible = if write {
            matches!(lock, Resource::RwLock { readers, writer: None, waiters, prefer }
                if readers.is_empty() && (*prefer != crate::model::sync::RwPrefer::Fifo || waiters.is_empty()))
        } else {
            lock.read_admissible()
        };
        let Resource::RwLock {
            readers,
            writer,
            waiters,
            ..
        } = lock
        else {
            unreachable!("checked by sync_call")
        };
        if *writer == Some(thread) || (write && readers.contains(thread)) {
            return self.resource_misuse(thread, resource, origin, relock);
        }
        if admissible {
            if write {
                *writer = Some(thread);
            } else {
                readers.push(thread);
            }
            self.acquired(thread, resource, self.now, !write);
            return self.proceed(cpu, thread);
        }
        waiters.push(
            Waiter {
                thread,
                since: self.now,
            },
            write,
        );
        self.wait_on(cpu, thread, BlockReason::RwLock(resource), origin);
        self.check_deadlock(thread);
        false
    }

    fn rw_unlock(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        write: bool,
        origin: SourceRef,
    ) -> bool {
        let Resource::RwLock {
            readers, writer, ..
        } = &mut self.resources[resource.index()]
        else {
            unreachable!("checked by sync_call")
        };
        let held = if write {
            (*writer == Some(thread)).then(|| *writer = None).is_some()
        } else {
            readers.remove(thread)
        };
        if !held {
            return self.resource_misuse(thread, resource, origin, not_owner);
        }
        self.sync_event(thread, resource, SyncAction::Released);
        let granted = self.resources[resource.index()].rw_grant();
        for (waiter, write) in granted {
            self.acquired(waiter.thread, resource, waiter.since, !write);
            self.wake(waiter.thread, Response::Resume);
        }
        self.proceed(cpu, thread)
    }

    // ----- condition variable -----------------------------------------------

    fn cond_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        condvar: ResourceId,
        mutex: ResourceId,
        timeout: Option<Span>,
        origin: SourceRef,
    ) -> bool {
        let is_mutex = matches!(
            self.resources.get(mutex.index()),
            Some(Resource::Mutex { .. })
        );
        if !is_mutex || !self.holds(thread, mutex) {
            if !is_mutex && mutex.index() >= self.resources.len() {
                self.misuse(thread, origin, Misuse::UnknownResource(mutex.0));
                return false;
            }
            return self.resource_misuse(thread, mutex, origin, not_owner);
        }
        self.mutex_unlock(thread, mutex);
        let Resource::Condvar { waiters } = &mut self.resources[condvar.index()] else {
            unreachable!("checked by sync_call")
        };
        waiters.push_back((
            Waiter {
                thread,
                since: self.now,
            },
            mutex,
        ));
        self.wait_on(cpu, thread, BlockReason::Condvar(condvar), origin);
        if let Some(timeout) = timeout {
            self.set_timer(thread, timeout);
        }
        false
    }

    fn notify(&mut self, cpu: usize, thread: ThreadId, condvar: ResourceId, all: bool) -> bool {
        let Resource::Condvar { waiters } = &mut self.resources[condvar.index()] else {
            unreachable!("checked by sync_call")
        };
        let count = waiters.len();
        let mut moved = Vec::new();
        if !all {
            // One waiter, through the chooser: the first by default, taken
            // from the front at no cost however many wait.
            if count > 0 {
                let index = self.choose_waiter(count, |engine, out| {
                    if let Resource::Condvar { waiters } = &engine.resources[condvar.index()] {
                        out.extend(waiters.iter().map(|(w, _)| w.thread));
                    }
                });
                let Resource::Condvar { waiters } = &mut self.resources[condvar.index()] else {
                    unreachable!("a condvar")
                };
                moved.push(waiters.remove(index).expect("a waiter"));
            }
        } else {
            // Every waiter, in the order the chooser wakes them (the order
            // they retake their mutexes in).
            let mut queue = WaitQueue::new();
            for (waiter, _) in waiters.iter() {
                queue.push(waiter.thread, waiter.since);
            }
            let mut woken = Vec::with_capacity(count);
            while !queue.is_empty() {
                woken.push(self.pick_waiter(&mut queue).expect("a waiter").thread);
            }
            let Resource::Condvar { waiters } = &mut self.resources[condvar.index()] else {
                unreachable!("a condvar")
            };
            let mut all: HashMap<ThreadId, (Waiter, ResourceId)> =
                waiters.drain(..).map(|w| (w.0.thread, w)).collect();
            moved.extend(woken.iter().map(|t| all.remove(t).expect("a waiter")));
        }
        let woken = moved.len();
        self.sync_event(thread, condvar, SyncAction::Notified { woke: woken as u32 });
        for (waiter, mutex) in moved {
            // A timed wait was notified: its timer is stale from now on.
            let t = &mut self.threads[waiter.thread.index()];
            t.wake_generation = t.wake_generation.wrapping_add(1);
            self.reacquire(waiter.thread, mutex);
        }
        self.proceed(cpu, thread)
    }

    /// A notified thread takes its mutex back, or waits for it.
    fn reacquire(&mut self, thread: ThreadId, mutex: ResourceId) {
        let Resource::Mutex {
            owner,
            waiters,
            options,
            ..
        } = &mut self.resources[mutex.index()]
        else {
            unreachable!("a condvar waits with a mutex")
        };
        match *owner {
            None => self.give_mutex(thread, mutex, self.now),
            Some(holder) => {
                waiters.push(thread, self.now);
                let inherit = options.inherit;
                let state = ThreadState::Blocked(BlockReason::Lock(mutex));
                self.record(thread, state, None, None);
                self.waiting_for_mutex(thread, holder, inherit);
            }
        }
    }

    // ----- barrier ----------------------------------------------------------

    fn barrier_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        resource: ResourceId,
        origin: SourceRef,
    ) -> bool {
        self.races.release(thread, SyncObject::Resource(resource));
        let Resource::Barrier { parties, waiting } = &mut self.resources[resource.index()] else {
            unreachable!("checked by sync_call")
        };
        if waiting.len() + 1 < *parties {
            waiting.push(thread, self.now);
            self.wait_on(cpu, thread, BlockReason::Barrier(resource), origin);
            return false;
        }
        let released: Vec<Waiter> = waiting.drain().collect();
        self.races.acquire(thread, SyncObject::Resource(resource));
        for waiter in released {
            self.races
                .acquire(waiter.thread, SyncObject::Resource(resource));
            self.wake(waiter.thread, Response::Resume);
        }
        self.proceed(cpu, thread)
    }

    // ----- event ------------------------------------------------------------

    /// `ev.set()`: publishes the setter's past, and every waiter goes on
    /// with it.
    fn event_set(&mut self, cpu: usize, thread: ThreadId, event: ResourceId) -> bool {
        let Resource::Event { set, waiters } = &mut self.resources[event.index()] else {
            unreachable!("checked by sync_call")
        };
        *set = true;
        let woken: Vec<Waiter> = waiters.drain().collect();
        let woke = woken.len() as u32;
        self.sync_event(thread, event, SyncAction::Notified { woke });
        for waiter in woken {
            self.acquired(waiter.thread, event, waiter.since, true);
            self.wake(waiter.thread, Response::Resume);
        }
        self.proceed(cpu, thread)
    }

    /// `ev.wait()` and `ev.wait(timeout)`: goes on at once when the event
    /// is set, else waits for a set (or the timeout: then false).
    fn event_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        event: ResourceId,
        timeout: Option<Span>,
        origin: SourceRef,
    ) -> bool {
        let reason = BlockReason::Event(event);
        self.wait_until_set(cpu, thread, event, timeout, reason, origin)
    }

    /// `future.result()`: an event the pool sets when the job ends, waited
    /// for in state join.
    fn future_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        event: ResourceId,
        timeout: Option<Span>,
        origin: SourceRef,
    ) -> bool {
        let reason = BlockReason::Future(event);
        self.wait_until_set(cpu, thread, event, timeout, reason, origin)
    }

    fn wait_until_set(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        event: ResourceId,
        timeout: Option<Span>,
        reason: BlockReason,
        origin: SourceRef,
    ) -> bool {
        let Resource::Event { set, waiters } = &mut self.resources[event.index()] else {
            unreachable!("checked by sync_call")
        };
        if *set {
            self.acquired(thread, event, self.now, true);
            return self.proceed(cpu, thread);
        }
        if timeout.is_some_and(Span::is_zero) {
            self.threads[thread.index()].pending = Some(Response::Bool(false));
            return self.proceed(cpu, thread);
        }
        waiters.push(thread, self.now);
        self.wait_on(cpu, thread, reason, origin);
        if let Some(timeout) = timeout {
            self.set_timer(thread, timeout);
        }
        false
    }

    // ----- countdown --------------------------------------------------------

    /// `cd.signal()`: publishes the signaller's past; the last signal lets
    /// every waiter go on with the past of every signaller.
    fn signal(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        countdown: ResourceId,
        origin: SourceRef,
    ) -> bool {
        let Resource::Countdown { remaining, waiters } = &mut self.resources[countdown.index()]
        else {
            unreachable!("checked by sync_call")
        };
        if *remaining == 0 {
            let name = self.trace.resource_name(countdown).to_string();
            self.misuse(thread, origin, Misuse::CountdownDone(name));
            return false;
        }
        *remaining -= 1;
        let woken: Vec<Waiter> = if *remaining == 0 {
            waiters.drain().collect()
        } else {
            Vec::new()
        };
        let woke = woken.len() as u32;
        self.sync_event(thread, countdown, SyncAction::Notified { woke });
        for waiter in woken {
            self.acquired(waiter.thread, countdown, waiter.since, true);
            self.wake(waiter.thread, Response::Resume);
        }
        self.proceed(cpu, thread)
    }

    /// `cd.wait()`: goes on at once when the countdown is at zero, else
    /// waits for the last signal.
    fn countdown_wait(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        countdown: ResourceId,
        origin: SourceRef,
    ) -> bool {
        let Resource::Countdown { remaining, waiters } = &mut self.resources[countdown.index()]
        else {
            unreachable!("checked by sync_call")
        };
        if *remaining == 0 {
            self.acquired(thread, countdown, self.now, true);
            return self.proceed(cpu, thread);
        }
        waiters.push(thread, self.now);
        self.wait_on(cpu, thread, BlockReason::Countdown(countdown), origin);
        false
    }

    // ----- channel ----------------------------------------------------------

    /// `send` of the thread on `cpu`. A message that crosses processes
    /// (see [`Engine::is_pipe`]) first costs the sender `ipc_cost` plus
    /// `ipc_byte_cost` per byte of CPU (pickling and the pipe write); `paid`
    /// says that is done. Returns true when the thread keeps the CPU.
    #[inline(never)]
    pub(super) fn send(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        channel: ResourceId,
        message: Message,
        origin: SourceRef,
        paid: bool,
    ) -> bool {
        match self.resources.get(channel.index()) {
            Some(Resource::Channel { .. }) => {}
            Some(_) => {
                return self.resource_misuse(thread, channel, origin, |resource, kind| {
                    Misuse::WrongKind {
                        resource,
                        kind,
                        operation: "send",
                    }
                })
            }
            None => {
                self.misuse(thread, origin, Misuse::UnknownResource(channel.0));
                return false;
            }
        }
        if !paid && self.is_pipe(channel, thread) {
            let cost = self.ipc_cost(message.bytes);
            if !cost.is_zero() {
                self.threads[thread.index()].work = Work::Compute {
                    remaining: cost,
                    then: super::Then::Send(Box::new((channel, message, origin))),
                };
                return true;
            }
        }
        let picked = self.pick_from(channel, |r| match r {
            Resource::Channel { receivers, .. } => receivers,
            _ => unreachable!("a channel"),
        });
        self.sync_event(thread, channel, SyncAction::Sent);
        if let Some(receiver) = picked {
            self.sync_event(receiver.thread, channel, SyncAction::Received);
            self.deliver(receiver.thread, message);
            return self.proceed(cpu, thread);
        }
        let Resource::Channel {
            capacity,
            items,
            senders,
            ..
        } = &mut self.resources[channel.index()]
        else {
            unreachable!("a channel")
        };
        if items.len() < *capacity {
            items.push_back(message);
            self.channel_changed(channel);
            return self.proceed(cpu, thread);
        }
        // Full: the send completes when a receiver takes the value.
        self.trace.sync.pop();
        senders.push_back((
            Waiter {
                thread,
                since: self.now,
            },
            message,
        ));
        self.wait_on(cpu, thread, BlockReason::Channel(channel), origin);
        self.channel_changed(channel);
        false
    }

    /// Notes that `thread` uses `channel`, and says whether the channel is a
    /// pipe: used by threads of more than one process, or awaited by a
    /// receiver of another process than `thread`'s.
    fn is_pipe(&mut self, channel: ResourceId, thread: ThreadId) -> bool {
        let threads = &self.threads;
        let process = threads[thread.index()].process;
        let Resource::Channel {
            first_user,
            crossed,
            receivers,
            ..
        } = &mut self.resources[channel.index()]
        else {
            return false;
        };
        match *first_user {
            None => *first_user = Some(process),
            Some(first) if first != process => *crossed = true,
            Some(_) => {}
        }
        // A waiting receiver used the channel when it began to receive, so
        // one of another process has made it a pipe already: no need to
        // look at every receiver on every message (checked in debug builds).
        debug_assert!(
            *crossed
                || !receivers
                    .iter()
                    .any(|w| threads[w.thread.index()].process != process),
            "a receiver of another process waits on a channel not marked crossed"
        );
        *crossed
    }

    /// The CPU time one side of a message of `bytes` between processes costs.
    fn ipc_cost(&self, bytes: u64) -> crate::time::Span {
        let per_byte = self.machine.ipc_byte_cost.as_nanos().saturating_mul(bytes);
        crate::time::Span(self.machine.ipc_cost.as_nanos().saturating_add(per_byte))
    }

    /// Hands a message to a receiver that was waiting for it: it resumes
    /// with the value, after paying to unpickle it if it came from another
    /// process.
    pub(super) fn deliver(&mut self, receiver: ThreadId, message: Message) {
        let from_elsewhere = message.from != self.threads[receiver.index()].process;
        let cost = self.ipc_cost(message.bytes);
        self.wake(receiver, Response::Value(message.value));
        if from_elsewhere && !cost.is_zero() {
            self.threads[receiver.index()].work = Work::Compute {
                remaining: cost,
                then: super::Then::Keep,
            };
        }
    }

    fn recv(
        &mut self,
        cpu: usize,
        thread: ThreadId,
        channel: ResourceId,
        origin: SourceRef,
    ) -> bool {
        self.is_pipe(channel, thread);
        let Resource::Channel {
            items,
            senders,
            receivers,
            ..
        } = &mut self.resources[channel.index()]
        else {
            unreachable!("checked by sync_call")
        };
        let message = match items.pop_front() {
            Some(message) => {
                // A blocked sender's value takes the freed place.
                if let Some((sender, waiting)) = senders.pop_front() {
                    items.push_back(waiting);
                    self.sync_event(sender.thread, channel, SyncAction::Sent);
                    self.wake(sender.thread, Response::Resume);
                }
                message
            }
            None => match senders.pop_front() {
                Some((sender, message)) => {
                    self.sync_event(sender.thread, channel, SyncAction::Sent);
                    self.wake(sender.thread, Response::Resume);
                    message
                }
                None => {
                    receivers.push(thread, self.now);
                    self.wait_on(cpu, thread, BlockReason::Channel(channel), origin);
                    return false;
                }
            },
        };
        self.sync_event(thread, channel, SyncAction::Received);
        let from_elsewhere = message.from != self.threads[thread.index()].process;
        let cost = self.ipc_cost(message.bytes);
        self.threads[thread.index()].pending = Some(Response::Value(message.value));
        self.channel_changed(channel);
        if from_elsewhere && !cost.is_zero() {
            // Unpickling: CPU time before the value is the thread's.
            self.threads[thread.index()].work = Work::Compute {
                remaining: cost,
                then: super::Then::Keep,
            };
            return self.threads[thread.index()].cpu == Some(cpu);
        }
        self.proceed(cpu, thread)
    }

    // ----- deadlock ---------------------------------------------------------

    /// What `thread` waits for, and the threads that hold it.
    fn waits_for(&self, thread: ThreadId, holders: &mut Vec<ThreadId>) -> Option<WaitTarget> {
        holders.clear();
        let t = &self.threads[thread.index()];
        let resource = match (t.state, &t.work) {
            (ThreadState::Blocked(BlockReason::Join(target)), _) => {
                holders.push(target);
                return Some(WaitTarget::Thread(target));
            }
            (ThreadState::Blocked(BlockReason::Lock(r) | BlockReason::RwLock(r)), _) => r,
            (_, Work::Spin(r)) => *r,
            _ => return None,
        };
        self.resources[resource.index()].holders(holders);
        holders.retain(|&h| h != thread);
        Some(WaitTarget::Resource(resource))
    }

    /// `thread` just started to wait: if that closed a cycle in the
    /// wait-for graph, record the deadlock (the first one only).
    fn check_deadlock(&mut self, thread: ThreadId) {
        if self.trace.deadlock.is_some() {
            return;
        }
        // The chooser's scratch list is free between choices: holders go
        // there, so that a wait that closes nothing allocates nothing.
        let mut holders = std::mem::take(&mut self.scratch);
        let threads = self.threads.len();
        let cycle = find_cycle(thread, threads, &mut holders, |t, h| self.waits_for(t, h));
        self.scratch = holders;
        let Some(cycle) = cycle else {
            return;
        };
        let steps = cycle
            .into_iter()
            .map(|(thread, target)| WaitStep {
                thread,
                target,
                origin: self.last_origin_of(thread),
            })
            .collect();
        self.trace.deadlock = Some(Deadlock {
            time: self.now,
            cycle: steps,
        });
    }

    /// Where `thread` last changed state with a recorded origin.
    fn last_origin_of(&self, thread: ThreadId) -> Option<crate::ids::OriginId> {
        self.trace.states.last_of(thread).and_then(|c| c.origin())
    }
}

fn not_owner(resource: String, kind: &'static str) -> Misuse {
    Misuse::NotOwner { resource, kind }
}

fn relock(resource: String, kind: &'static str) -> Misuse {
    Misuse::Relock { resource, kind }
}

fn op_name(op: SyncOp) -> &'static str {
    match op {
        SyncOp::Lock => "lock",
        SyncOp::TryLock => "try_lock",
        SyncOp::Unlock => "unlock",
        SyncOp::Acquire => "acquire",
        SyncOp::TryAcquire => "try_acquire",
        SyncOp::Permits => "value",
        SyncOp::Release => "release",
        SyncOp::ReadLock => "read_lock",
        SyncOp::ReadUnlock => "read_unlock",
        SyncOp::WriteLock => "write_lock",
        SyncOp::WriteUnlock => "write_unlock",
        SyncOp::Wait(_) => "wait",
        SyncOp::NotifyOne => "notify_one",
        SyncOp::NotifyAll => "notify_all",
        SyncOp::BarrierWait => "barrier wait",
        SyncOp::Set => "set",
        SyncOp::Clear => "clear",
        SyncOp::IsSet => "is_set",
        SyncOp::EventWait | SyncOp::CountdownWait => "wait",
        SyncOp::FutureWait => "result",
        SyncOp::Signal => "signal",
        SyncOp::Recv => "recv",
    }
}
