//! I/O in scripts: `m.device(...)` declares a device; inside bodies
//! `dev.io(b)` blocks, `dev.submit(b)` returns a handle (`h.ready()`,
//! `h.wait()`, `h.bytes`, `h.device`, `==`), and `epoll()` makes a set that
//! waits on handles and on channels' `readable()` / `writable()`.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position, INT};

use super::api::{def, getter};
use super::current;
use super::duration::to_span;
use super::error::fault;
use super::machine::{MachineHandle, ProcessHandle};
use super::sync::ResourceSpec;
use crate::ids::ResourceId;
use crate::model::io::{parse_bandwidth, DeviceOptions, DeviceRef, EpollRef, Pollable};
use crate::time::Span;

/// The keys `m.device(name, #{ ... })` accepts.
const DEVICE_KEYS: &str = "latency, bandwidth, channels";

/// A script's handle to a device of one machine.
#[derive(Clone, Debug)]
pub(crate) struct DeviceH {
    machine: MachineHandle,
    id: ResourceId,
}

/// What `dev.submit(b)`, `ch.readable()` and `ch.writable()` return and
/// `ep.wait()` gives back.
#[derive(Clone, Debug)]
pub(crate) struct IoH {
    machine: MachineHandle,
    pollable: Pollable,
}

impl IoH {
    /// A channel's readiness handle.
    pub(crate) fn channel(machine: MachineHandle, pollable: Pollable) -> IoH {
        IoH { machine, pollable }
    }
}

/// A script's handle to an epoll instance made by `epoll()`.
#[derive(Clone, Debug)]
pub(crate) struct EpollH {
    machine: MachineHandle,
    id: ResourceId,
}

/// A whole, non-negative byte count, or a positioned error.
pub(crate) fn byte_count(value: &Dynamic, position: Position) -> Result<u64, Box<EvalAltResult>> {
    let hint = Some("give the request's size in bytes as a whole number, e.g. dev.io(4096)");
    match value.as_int() {
        Ok(n) if n >= 0 => Ok(n as u64),
        Ok(n) => Err(fault(
            format!("a byte count cannot be negative, not {n}"),
            hint,
            position,
        )),
        Err(_) => Err(fault(
            format!(
                "a byte count must be a whole number of bytes, not {value} ({})",
                value.type_name()
            ),
            hint,
            position,
        )),
    }
}

/// Reads `#{ latency, bandwidth, channels }`.
fn device_options(map: &Map, position: Position) -> Result<DeviceOptions, Box<EvalAltResult>> {
    let mut options = DeviceOptions::default();
    for (key, value) in map {
        match key.as_str() {
            "latency" => options.latency = to_span(value, "`latency`", position)?,
            "bandwidth" => {
                let rate = if let Ok(n) = value.as_int() {
                    u64::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                        fault(
                            format!("`bandwidth` must be at least 1 byte per second, not {n}"),
                            Some("write bytes per second as an integer or \"100MB/s\", \"1GiB/s\", \"10Gbit/s\""),
                            position,
                        )
                    })?
                } else if let Ok(text) = value.clone().into_immutable_string() {
                    parse_bandwidth(&text).map_err(|e| {
                        fault(
                            e,
                            Some("units: B, kB, MB, GB, KiB, MiB, GiB, bit, Mbit, Gbit, each per second (/s)"),
                            position,
                        )
                    })?
                } else {
                    return Err(fault(
                        format!(
                            "`bandwidth` must be bytes per second, an integer or a string like \"100MB/s\", not {value} ({})",
                            value.type_name()
                        ),
                        None,
                        position,
                    ));
                };
                options.bandwidth = Some(rate);
            }
            "channels" => {
                let n = value.as_int().map_err(|_| {
                    fault(
                        format!(
                            "`channels` must be an integer, not {value} ({})",
                            value.type_name()
                        ),
                        None,
                        position,
                    )
                })?;
                if !(1..=65535).contains(&n) {
                    return Err(fault(
                        format!("`channels` must be between 1 and 65535, not {n}"),
                        Some("channels is how many requests the device serves at once"),
                        position,
                    ));
                }
                options.channels = n as u16;
            }
            other => {
                return Err(fault(
                    format!("a device has no option `{other}`"),
                    Some(&format!("its options are: {DEVICE_KEYS}")),
                    position,
                ))
            }
        }
    }
    Ok(options)
}

fn declare_device(
    call: &NativeCallContext,
    machine: &MachineHandle,
    name: &str,
    options: &Map,
) -> Result<DeviceH, Box<EvalAltResult>> {
    let options = device_options(options, call.call_position())?;
    let id = machine.declare_resource(call, name, ResourceSpec::Device(options))?;
    Ok(DeviceH {
        machine: machine.clone(),
        id,
    })
}

impl DeviceH {
    /// Its machine and device, unchecked.
    pub(crate) fn parts(&self) -> (&MachineHandle, DeviceRef) {
        (&self.machine, DeviceRef(self.id))
    }

    pub(crate) fn device(&self, call: &NativeCallContext) -> Result<DeviceRef, Box<EvalAltResult>> {
        self.machine.check_running(call, "device")?;
        Ok(DeviceRef(self.id))
    }
}

impl IoH {
    fn pollable(&self, call: &NativeCallContext) -> Result<Pollable, Box<EvalAltResult>> {
        self.machine.check_running(call, "I/O handle")?;
        Ok(self.pollable)
    }

    fn io(
        &self,
        call: &NativeCallContext,
    ) -> Result<crate::model::io::IoHandle, Box<EvalAltResult>> {
        match self.pollable(call)? {
            Pollable::Io(handle) => Ok(handle),
            _ => Err(fault(
                format!(
                    "{}() is for I/O requests, not a channel's readiness",
                    call.fn_name()
                ),
                Some("a channel's readiness handle is for epoll: ep.add(ch.readable())"),
                call.call_position(),
            )),
        }
    }
}

impl EpollH {
    fn epoll(&self, call: &NativeCallContext) -> Result<EpollRef, Box<EvalAltResult>> {
        self.machine.check_running(call, "epoll")?;
        Ok(EpollRef(self.id))
    }
}

/// The running machine, for `epoll()`: the body's own.
fn running_machine(call: &NativeCallContext) -> Result<MachineHandle, Box<EvalAltResult>> {
    super::session::with(|s| s.running.clone()).ok_or_else(|| {
        fault(
            "epoll() is an operation of a simulated thread",
            Some("call it inside a thread body: m.add_thread(\"name\", || { let ep = epoll(); ... })"),
            call.call_position(),
        )
    })
}

/// Registers devices, I/O handles and epoll.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<DeviceH>("Device");
    engine.register_type_with_name::<IoH>("IoHandle");
    engine.register_type_with_name::<EpollH>("Epoll");

    def(
        engine,
        "device",
        &["self: Machine", "name: String", "options: Map", "Device"],
        "Declares an I/O device with #{ latency, bandwidth (bytes/s: 1000000 or \"100MB/s\"), channels (default 1) }: requests queue FIFO and take latency + bytes/bandwidth on one of the channels.",
        |call: NativeCallContext, m: &mut MachineHandle, name: &str, options: Map| {
            declare_device(&call, m, name, &options)
        },
    );
    def(
        engine,
        "device",
        &["self: Process", "name: String", "options: Map", "Device"],
        "Declares an I/O device of the machine (the same as m.device).",
        |call: NativeCallContext, p: &mut ProcessHandle, name: &str, options: Map| {
            declare_device(&call, p.machine(), name, &options)
        },
    );
    def(
        engine,
        "io",
        &["self: Device", "bytes: int", "()"],
        "Inside a body: blocking I/O of `bytes`; the thread waits off the CPU (state io) until the request completes.",
        |call: NativeCallContext, dev: &mut DeviceH, bytes: Dynamic| {
            let bytes = byte_count(&bytes, call.call_position())?;
            let device = dev.device(&call)?;
            current::operation(&call, |ctx| ctx.io(device, bytes))
        },
    );
    def(
        engine,
        "submit",
        &["self: Device", "bytes: int", "IoHandle"],
        "Inside a body: submits a request of `bytes` and goes on at once; the handle says when it completes (h.ready(), h.wait(), epoll).",
        |call: NativeCallContext, dev: &mut DeviceH, bytes: Dynamic| {
            let bytes = byte_count(&bytes, call.call_position())?;
            let device = dev.device(&call)?;
            let handle = current::operation(&call, |ctx| ctx.submit(device, bytes))?;
            Ok::<_, Box<EvalAltResult>>(IoH {
                machine: dev.machine.clone(),
                pollable: Pollable::Io(handle),
            })
        },
    );
    getter(
        engine,
        "name",
        &["self: Device", "String"],
        "The device's name.",
        |dev: &mut DeviceH| dev.machine.resource_name(dev.id),
    );
    def(
        engine,
        "ready",
        &["self: IoHandle", "bool"],
        "Inside a body: whether the request has completed (takes no time).",
        |call: NativeCallContext, h: &mut IoH| {
            let handle = h.io(&call)?;
            current::operation(&call, |ctx| ctx.io_ready(handle))
        },
    );
    def(
        engine,
        "wait",
        &["self: IoHandle", "()"],
        "Inside a body: waits off the CPU (state io) until the request completes; at once if it has.",
        |call: NativeCallContext, h: &mut IoH| {
            let handle = h.io(&call)?;
            current::operation(&call, |ctx| ctx.io_wait(handle))
        },
    );
    getter(
        engine,
        "bytes",
        &["self: IoHandle", "int"],
        "The request's size in bytes (0 for a channel's readiness).",
        |h: &mut IoH| match h.pollable {
            Pollable::Io(handle) => handle.bytes as INT,
            _ => 0,
        },
    );
    getter(
        engine,
        "device",
        &["self: IoHandle", "String"],
        "The name of the request's device (of the channel, for a readiness handle).",
        |h: &mut IoH| {
            let id = match h.pollable {
                Pollable::Io(handle) => handle.device,
                Pollable::Readable(r) | Pollable::Writable(r) => r,
            };
            h.machine.resource_name(id)
        },
    );
    let same = |a: &mut IoH, b: IoH| {
        a.pollable.key() == b.pollable.key() && Rc::ptr_eq(a.machine.shared(), b.machine.shared())
    };
    def(
        engine,
        "==",
        &["self: IoHandle", "other: IoHandle", "bool"],
        "Whether two handles name the same request (or the same readiness).",
        same,
    );
    def(
        engine,
        "!=",
        &["self: IoHandle", "other: IoHandle", "bool"],
        "Whether two handles name different requests.",
        move |a: &mut IoH, b: IoH| !same(a, b),
    );

    def(
        engine,
        "epoll",
        &["Epoll"],
        "Inside a body: a new epoll set of this thread's process (ep.add, ep.remove, ep.len, ep.wait).",
        |call: NativeCallContext| {
            let machine = running_machine(&call)?;
            let epoll = current::operation(&call, |ctx| ctx.epoll())?;
            Ok::<_, Box<EvalAltResult>>(EpollH {
                machine,
                id: epoll.id(),
            })
        },
    );
    def(
        engine,
        "add",
        &["self: Epoll", "handle: IoHandle", "()"],
        "Adds a request or a channel's readiness to the set (takes no time).",
        |call: NativeCallContext, ep: &mut EpollH, h: IoH| {
            let (epoll, pollable) = (ep.epoll(&call)?, h.pollable(&call)?);
            current::operation(&call, |ctx| ctx.epoll_add(epoll, pollable))
        },
    );
    def(
        engine,
        "remove",
        &["self: Epoll", "handle: IoHandle", "bool"],
        "Removes a handle from the set; false when it was not in (takes no time).",
        |call: NativeCallContext, ep: &mut EpollH, h: IoH| {
            let (epoll, pollable) = (ep.epoll(&call)?, h.pollable(&call)?);
            current::operation(&call, |ctx| ctx.epoll_remove(epoll, pollable))
        },
    );
    def(
        engine,
        "len",
        &["self: Epoll", "int"],
        "How many handles the set holds, ready or not (takes no time).",
        |call: NativeCallContext, ep: &mut EpollH| {
            let epoll = ep.epoll(&call)?;
            current::operation(&call, |ctx| ctx.epoll_len(epoll) as INT)
        },
    );
    let wait = |call: &NativeCallContext, ep: &EpollH, timeout: Option<Span>| {
        let epoll = ep.epoll(call)?;
        let ready = current::operation(call, |ctx| ctx.epoll_wait(epoll, timeout))?;
        Ok::<_, Box<EvalAltResult>>(
            ready
                .into_iter()
                .map(|pollable| {
                    Dynamic::from(IoH {
                        machine: ep.machine.clone(),
                        pollable,
                    })
                })
                .collect::<Array>(),
        )
    };
    def(
        engine,
        "wait",
        &["self: Epoll", "Array"],
        "Inside a body: waits (state epoll) until a handle of the set is ready; returns every ready one, in the order they became ready, removed from the set.",
        move |call: NativeCallContext, ep: &mut EpollH| wait(&call, ep, None),
    );
    def(
        engine,
        "wait",
        &["self: Epoll", "timeout: Duration", "Array"],
        "Inside a body: ep.wait() that gives up after `timeout`, returning [].",
        move |call: NativeCallContext, ep: &mut EpollH, timeout: Dynamic| {
            let timeout = to_span(&timeout, "the timeout", call.call_position())?;
            wait(&call, ep, Some(timeout))
        },
    );
}
