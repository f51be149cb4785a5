//! Charts of small simulated runs: files, formats, determinism, errors.

use std::path::PathBuf;

use super::canvas::Shape;
use super::*;
use crate::{ms, us, Machine, SchedulerKind, Simulation};

/// Three threads on two CPUs under round robin: two compute, one sleeps,
/// starts a helper and joins it.
fn small_trace() -> Trace {
    let machine = Machine {
        cpus: 2,
        scheduler: SchedulerKind::RoundRobin,
        quantum: ms(2),
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).unwrap();
    sim.add_thread("alpha", |ctx| ctx.compute(ms(10)));
    sim.add_thread("beta", |ctx| ctx.compute(ms(8)));
    sim.add_thread("gamma_with_a_rather_long_name", |ctx| {
        ctx.sleep(ms(3));
        let helper = ctx.start_thread("helper", |ctx| ctx.compute(ms(2)));
        ctx.join(helper);
    });
    let run = sim.run();
    assert!(run.completed());
    run.trace
}

/// A fresh path in the temporary folder.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sim-core-plot-{}-{name}", std::process::id()))
}

/// Decodes a PNG file: (width, height, RGB pixels).
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

fn has_color(pixels: &[u8], color: plotters::style::RGBColor) -> bool {
    let plotters::style::RGBColor(r, g, b) = color;
    pixels.chunks(3).any(|p| p == [r, g, b])
}

#[test]
fn a_png_chart_has_the_width_asked_for_and_the_state_colours() {
    let trace = small_trace();
    let path = temp_path("small.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (width, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(width, 1600);
    assert!((200..800).contains(&height), "height {height}");
    assert!(
        pixels.chunks(3).any(|p| p != &pixels[..3]),
        "all one colour"
    );
    for shade in [
        palette::Shade::Running,
        palette::Shade::Ready,
        palette::Shade::Sleep,
        palette::Shade::Join,
    ] {
        assert!(has_color(&pixels, shade.color()), "{shade:?} not drawn");
    }
}

#[test]
fn rows_grow_the_chart_taller() {
    let mut sim = Simulation::new(Machine::default()).unwrap();
    for i in 0..30 {
        sim.add_thread(&format!("w{i}"), move |ctx| ctx.compute(us(100 + i)));
    }
    let thirty = sim.run().trace;
    let small = gantt::layout(&small_trace(), &GanttOptions::default());
    let big = gantt::layout(&thirty, &GanttOptions::default());
    assert!(big.height > small.height + 25 * gantt::ROW_MAX / 2);
}

#[test]
fn an_svg_chart_names_the_threads_and_cpus() {
    let trace = small_trace();
    let path = temp_path("small.svg");
    let options = GanttOptions {
        title: "small".into(),
        format: ChartFormat::Svg,
        ..GanttOptions::default()
    };
    gantt(&trace, &path, &options).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
    for name in [
        "alpha",
        "beta",
        "helper",
        "CPU 0",
        "CPU 1",
        "small — makespan",
    ] {
        assert!(svg.contains(name), "{name} missing");
    }
    // The long name is cut in the label column but whole on wide CPU bars.
    assert!(svg.contains("gamma_with_a_rather_long_name") || svg.contains("gamma_with"));
}

#[test]
fn the_same_trace_gives_the_same_bytes() {
    let trace = small_trace();
    for format in [ChartFormat::Png, ChartFormat::Svg] {
        let options = GanttOptions {
            title: "again".into(),
            format,
            markers: vec![Marker {
                time: Time(ms(4).as_nanos()),
                label: "look here".into(),
                threads: vec![ThreadId(1)],
                kind: MarkerKind::Note,
            }],
            ..GanttOptions::default()
        };
        let (a, b) = (temp_path("a"), temp_path("b"));
        gantt(&trace, &a, &options).unwrap();
        gantt(&small_trace(), &b, &options).unwrap();
        let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert!(bytes_a == bytes_b, "{format:?} differs");
    }
}

#[test]
fn the_legend_lists_only_states_that_occur() {
    let picture = gantt::layout(&small_trace(), &GanttOptions::default());
    let texts: Vec<&str> = picture
        .shapes
        .iter()
        .filter_map(|s| match s {
            Shape::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    for name in ["running", "ready", "switch", "sleep", "join"] {
        assert!(texts.contains(&name), "{name} missing from {texts:?}");
    }
    for name in ["lock", "io", "gil", "spin", "deadlock"] {
        assert!(!texts.contains(&name), "{name} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.ends_with("ms")), "no axis labels");
}

#[test]
fn markers_draw_a_line_a_label_and_outline_their_threads() {
    let trace = small_trace();
    let options = GanttOptions {
        markers: vec![Marker {
            time: Time(ms(5).as_nanos()),
            label: "cycle: alpha → beta".into(),
            threads: vec![ThreadId(0), ThreadId(1), ThreadId(99)],
            kind: MarkerKind::Deadlock,
        }],
        ..GanttOptions::default()
    };
    let plain = gantt::layout(&trace, &GanttOptions::default());
    let marked = gantt::layout(&trace, &options);
    assert!(marked.height > plain.height, "no lane for the marker label");
    let red = plotters::style::RGBColor(0xe0, 0x10, 0x10);
    let red_rects = marked
        .shapes
        .iter()
        .filter(|s| matches!(s, Shape::Rect { color, .. } if *color == red))
        .count();
    // One outline of four sides around both rows, one line, one legend
    // swatch.
    assert_eq!(red_rects, 6);
    let labelled = marked.shapes.iter().any(
        |s| matches!(s, Shape::Text { text, color, .. } if text == "cycle: alpha → beta" && *color == red),
    );
    assert!(labelled);
}

#[test]
fn thousands_of_threads_share_rows_and_keep_the_chart_bounded() {
    let mut sim = Simulation::new(Machine {
        cpus: 4,
        stack_size: 64 * 1024,
        ..Machine::default()
    })
    .unwrap();
    for i in 0..4500u64 {
        sim.add_thread(&format!("t{i}"), move |ctx| ctx.compute(us(1 + i % 7)));
    }
    let trace = sim.run().trace;
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert!(picture.height < 4800, "height {}", picture.height);
    let texts: Vec<&str> = picture
        .shapes
        .iter()
        .filter_map(|s| match s {
            Shape::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.contains(&"t0 … t2"), "{:?}", &texts[..20]);
    assert!(texts
        .iter()
        .any(|t| t.contains("each thread row merges 3 threads")));
    let path = temp_path("many.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (_, height, _) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(height, picture.height);
}

#[test]
fn rows_of_many_threads_merge_alike_in_one_pass_or_many() {
    // 4,500 threads share 1,500 rows and 600 CPUs 200; a budget of one
    // table makes every such row a pass of its own over the trace, and the
    // chart must not change.
    let mut sim = Simulation::new(Machine {
        cpus: 600,
        stack_size: 64 * 1024,
        ..Machine::default()
    })
    .unwrap();
    for i in 0..4500u64 {
        sim.add_thread(&format!("t{i}"), move |ctx| {
            ctx.compute(us(1 + i % 7));
            ctx.sleep(us(3 + i % 5));
            ctx.compute(us(2));
        });
    }
    let trace = sim.run().trace;
    let options = GanttOptions::default();
    let once = gantt::layout_within(&trace, &options, usize::MAX);
    let many = gantt::layout_within(&trace, &options, 1);
    assert!(once.shapes.len() > 1000, "{} shapes", once.shapes.len());
    assert!(once == many, "the chart changed with the passes");
}

#[test]
fn a_bad_width_or_folder_is_an_error_that_names_it() {
    let trace = small_trace();
    let options = GanttOptions {
        width: 10,
        ..GanttOptions::default()
    };
    let err = gantt(&trace, &temp_path("narrow.png"), &options).unwrap_err();
    assert!(matches!(err, PlotError::Width { width: 10 }), "{err}");
    assert!(err.to_string().contains("400"), "{err}");

    let path = temp_path("no-such-folder").join("chart.png");
    let err = gantt(&trace, &path, &GanttOptions::default()).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
    assert!(err.to_string().contains("chart.png"), "{err}");
}

#[test]
fn an_empty_trace_still_draws() {
    let trace = Simulation::new(Machine::default()).unwrap().run().trace;
    let path = temp_path("empty.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (width, _, _) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(width, 1600);
}

/// Two threads on two CPUs, each holding one mutex and blocked on the
/// other's: a locks m1 and waits for m2 from 3ms, b locks m2 and waits for
/// m1 from 4ms, and the run ends there. Built by hand, as the kernel would
/// record it.
fn deadlock_trace() -> Trace {
    use crate::model::process::ProcessInfo;
    use crate::trace::{
        Deadlock, ResourceInfo, ResourceKind, StateChange, ThreadInfo, WaitStep, WaitTarget,
    };
    use crate::{BlockReason, CpuId, ResourceId, ThreadState};

    let mut trace = Trace::new(Machine {
        cpus: 2,
        ..Machine::default()
    });
    trace.processes.push(ProcessInfo {
        name: "main".into(),
    });
    for name in ["a", "b"] {
        trace.threads.push(ThreadInfo {
            name: name.into(),
            process: crate::ProcessId(0),
            parent: None,
            created: Time::ZERO,
            priority: 0,
            nice: 0,
            task_of: None,
        });
    }
    for name in ["m1", "m2"] {
        trace.resources.push(ResourceInfo {
            name: name.into(),
            kind: ResourceKind::Mutex,
            internal: false,
        });
    }
    let (m1, m2) = (ResourceId(0), ResourceId(1));
    let change = |t: u64, thread: u32, state: ThreadState| {
        StateChange::new(
            Time(ms(t).as_nanos()),
            ThreadId(thread),
            state,
            state.on_cpu().then_some(CpuId(thread as u16)),
            None,
        )
    };
    trace.states = vec![
        change(0, 0, ThreadState::Running),
        change(0, 1, ThreadState::Running),
        change(3, 0, ThreadState::Blocked(BlockReason::Lock(m2))),
        change(4, 1, ThreadState::Blocked(BlockReason::Lock(m1))),
    ]
    .into();
    trace.deadlock = Some(Deadlock {
        time: Time(ms(4).as_nanos()),
        cycle: vec![
            WaitStep {
                thread: ThreadId(1),
                target: WaitTarget::Resource(m1),
                origin: None,
            },
            WaitStep {
                thread: ThreadId(0),
                target: WaitTarget::Resource(m2),
                origin: None,
            },
        ],
    });
    trace.end = Time(ms(4).as_nanos());
    trace
}

#[test]
fn a_deadlock_is_drawn_deterministically_with_its_cycle_and_resources() {
    for format in [ChartFormat::Png, ChartFormat::Svg] {
        let options = GanttOptions {
            title: "deadlock".into(),
            format,
            ..GanttOptions::default()
        };
        let (a, b) = (temp_path("dl-a"), temp_path("dl-b"));
        gantt(&deadlock_trace(), &a, &options).unwrap();
        gantt(&deadlock_trace(), &b, &options).unwrap();
        let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert!(bytes_a == bytes_b, "{format:?} differs");
        if format == ChartFormat::Svg {
            let svg = String::from_utf8(bytes_a).unwrap();
            for word in ["m1", "m2", "deadlock: b → m1 → a → m2 → b"] {
                assert!(svg.contains(word), "{word} missing");
            }
        }
    }
}

#[test]
fn a_deadlock_gets_a_marker_outlines_hatch_and_a_legend_entry() {
    let trace = deadlock_trace();
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let texts = picture.texts();
    for text in ["deadlock", "deadlock: b → m1 → a → m2 → b", "m1", "m2"] {
        assert!(texts.contains(&text), "{text} missing from {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("run ended at 4ms")));
    let lines = picture
        .shapes
        .iter()
        .filter(|s| matches!(s, Shape::Line { .. }))
        .count();
    assert!(lines > 20, "{lines} hatch lines");
    // The blocked bars run past the end of the run, so b's wait shows.
    let red = plotters::style::RGBColor(0xe0, 0x10, 0x10);
    let red_rects = picture
        .shapes
        .iter()
        .filter(|s| matches!(s, Shape::Rect { color, .. } if *color == red))
        .count();
    // Row outline (4), two bar frames (8), marker line, legend swatch.
    assert_eq!(red_rects, 14);

    // The caller's deadlock marker at the same time replaces the cycle's.
    let options = GanttOptions {
        markers: vec![Marker {
            time: Time(ms(4).as_nanos()),
            label: "stuck".into(),
            threads: vec![],
            kind: MarkerKind::Deadlock,
        }],
        ..GanttOptions::default()
    };
    let picture = gantt::layout(&trace, &options);
    let texts = picture.texts();
    assert!(texts.contains(&"stuck"));
    assert!(
        !texts.iter().any(|t| t.starts_with("deadlock:")),
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| **t == "deadlock").count(),
        1,
        "one legend entry"
    );
}

#[test]
fn a_trace_without_deadlock_is_drawn_as_before() {
    let trace = small_trace();
    assert!(trace.deadlock.is_none());
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert!(!picture
        .shapes
        .iter()
        .any(|s| matches!(s, Shape::Line { .. })));
    assert!(!picture.texts().iter().any(|t| t.contains("deadlock")));
}

#[test]
fn a_cycle_through_a_join_reads_join() {
    use crate::trace::{WaitStep, WaitTarget};
    let mut trace = deadlock_trace();
    let dl = trace.deadlock.as_mut().unwrap();
    dl.cycle[1] = WaitStep {
        thread: ThreadId(0),
        target: WaitTarget::Thread(ThreadId(1)),
        origin: None,
    };
    let dl = trace.deadlock.clone().unwrap();
    assert_eq!(
        deadlock::cycle_label(&trace, &dl),
        "deadlock: b → m1 → a → join b"
    );
}

/// Three threads and a disk of two channels, built by hand as the kernel
/// records them: reader's request runs on channel 0 over 0–4ms, writer's on
/// channel 1 over 1–5ms, and scanner's, submitted at 2ms, waits for
/// channel 0 until 4ms and runs until 8ms.
fn device_trace() -> Trace {
    use crate::model::io::DeviceOptions;
    use crate::model::process::ProcessInfo;
    use crate::trace::{DeviceInfo, IoRecord, ResourceInfo, ResourceKind, StateChange, ThreadInfo};
    use crate::{BlockReason, CpuId, ResourceId, ThreadState};

    let mut trace = Trace::new(Machine {
        cpus: 2,
        ..Machine::default()
    });
    trace.processes.push(ProcessInfo {
        name: "main".into(),
    });
    for name in ["reader", "writer", "scanner"] {
        trace.threads.push(ThreadInfo {
            name: name.into(),
            process: crate::ProcessId(0),
            parent: None,
            created: Time::ZERO,
            priority: 0,
            nice: 0,
            task_of: None,
        });
    }
    trace.resources.push(ResourceInfo {
        name: "disk".into(),
        kind: ResourceKind::Device,
        internal: false,
    });
    let disk = ResourceId(0);
    trace.devices.push(DeviceInfo {
        resource: disk,
        options: DeviceOptions {
            latency: ms(4),
            bandwidth: None,
            channels: 2,
        },
    });
    let at = |t: u64| Time(ms(t).as_nanos());
    let request = |thread: u32, submitted: u64, started: u64, channel: u16| IoRecord {
        device: disk,
        thread: ThreadId(thread),
        bytes: 4096,
        submitted: at(submitted),
        started: Some((at(started), channel)),
        completed: Some(at(started + 4)),
        origin: None,
        task: None,
    };
    trace.io = vec![
        request(0, 0, 0, 0),
        request(1, 1, 1, 1),
        request(2, 2, 4, 0),
    ];
    let change = |t: u64, thread: u32, state: ThreadState, cpu: Option<u16>| {
        StateChange::new(at(t), ThreadId(thread), state, cpu.map(CpuId), None)
    };
    let io = ThreadState::Blocked(BlockReason::Io(disk));
    trace.states = vec![
        change(0, 0, io, None),
        change(0, 1, ThreadState::Running, Some(1)),
        change(0, 2, ThreadState::Running, Some(0)),
        change(1, 1, io, None),
        change(2, 2, io, None),
        change(4, 0, ThreadState::Running, Some(0)),
        change(5, 1, ThreadState::Running, Some(1)),
        change(6, 0, ThreadState::Done, None),
        change(7, 1, ThreadState::Done, None),
        change(8, 2, ThreadState::Running, Some(0)),
        change(9, 2, ThreadState::Done, None),
    ]
    .into();
    trace.end = at(9);
    trace
}

/// The same trace without its devices and requests.
fn without_devices(trace: &Trace) -> Trace {
    let mut trace = trace.clone();
    trace.devices.clear();
    trace.io.clear();
    trace
}

#[test]
fn devices_get_a_row_per_channel_and_a_queue_row() {
    let trace = device_trace();
    let path = temp_path("devices.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (width, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(width, 1600);
    let plain = gantt::layout(&without_devices(&trace), &GanttOptions::default());
    // Two channel rows and a queue row, a little gap before them.
    assert!(
        height >= plain.height + 3 * gantt::ROW_MAX,
        "{height} vs {}",
        plain.height
    );
    assert!(has_color(&pixels, palette::Shade::Service.color()));
    // One request waits at a time: the lightest queue colour.
    assert!(has_color(&pixels, palette::queue_color(1)));

    let picture = gantt::layout(&trace, &GanttOptions::default());
    let (with, without) = (picture.texts(), plain.texts());
    for label in [
        "disk ch0",
        "disk ch1",
        "disk queue",
        "in service",
        "queued",
        "1",
    ] {
        assert!(with.contains(&label), "{label} missing from {with:?}");
        assert!(!without.contains(&label), "{label} in {without:?}");
    }
    // Each submitter's name is on its request's bar, once more than
    // without the device (thread rows and CPU bars carry it already).
    for name in ["reader", "writer", "scanner"] {
        let count = |texts: &[&str]| texts.iter().filter(|t| **t == name).count();
        assert_eq!(count(&with), count(&without) + 1, "{name}");
    }
    assert!(with.iter().any(|t| t.contains("3 threads · 1 device")));

    let path = temp_path("devices.svg");
    let options = GanttOptions {
        format: ChartFormat::Svg,
        ..GanttOptions::default()
    };
    gantt(&trace, &path, &options).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for text in [
        "disk ch0",
        "disk ch1",
        "disk queue",
        "reader",
        "writer",
        "scanner",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
}

#[test]
fn a_device_of_one_channel_is_labelled_with_its_name_and_waits_without_queue_have_no_queue_row() {
    let mut trace = device_trace();
    trace.devices[0].options.channels = 1;
    // Serial on channel 0, no request waits.
    for (i, record) in trace.io.iter_mut().enumerate() {
        let start = Time(ms(4 * i as u64).as_nanos());
        record.submitted = start;
        record.started = Some((start, 0));
        record.completed = Some(Time(ms(4 * i as u64 + 4).as_nanos()));
    }
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let texts = picture.texts();
    assert!(texts.contains(&"disk"), "{texts:?}");
    assert!(texts.contains(&"in service"));
    for absent in ["disk ch0", "disk queue", "queued"] {
        assert!(!texts.contains(&absent), "{absent} in {texts:?}");
    }
}

/// A disk of 64 channels taking `n` requests from 8 threads: requests take
/// 100–220µs and arrive every 4µs, but every 1µs in bursts of 300 out of
/// each 1000, when they queue; the last ten never complete, the last one
/// never starts.
fn busy_device_trace(n: u64) -> Trace {
    let mut trace = device_trace();
    trace.devices[0].options.channels = 64;
    for i in 3..8 {
        trace.threads.push(crate::trace::ThreadInfo {
            name: format!("t{i}"),
            ..trace.threads[0].clone()
        });
    }
    let disk = trace.devices[0].resource;
    let mut free = [Time::ZERO; 64];
    let mut now = Time::ZERO;
    trace.io = (0..n)
        .map(|i| {
            now += us(if i % 1000 < 300 { 1 } else { 4 });
            let submitted = now;
            let channel = (0..64).min_by_key(|&c| free[c]).unwrap_or(0);
            let started = free[channel].max(submitted);
            let completed = started + us(100 + (i * 7919) % 120);
            free[channel] = completed;
            crate::trace::IoRecord {
                device: disk,
                thread: ThreadId((i % 8) as u32),
                bytes: 512,
                submitted,
                started: (i + 1 < n).then_some((started, channel as u16)),
                completed: (i + 10 < n).then_some(completed),
                origin: None,
                task: None,
            }
        })
        .collect();
    trace.end = trace.end.max(now + us(300));
    trace
}

#[test]
fn sixty_four_channels_share_sixteen_rows() {
    let trace = busy_device_trace(20_000);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let texts = picture.texts();
    for label in ["disk ch0–3", "disk ch60–63", "disk queue"] {
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
    assert!(!texts.contains(&"disk ch64"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("each disk row merges 4 channels")),
        "{texts:?}"
    );
    let plain = gantt::layout(&without_devices(&trace), &GanttOptions::default());
    let rows = gantt::MAX_CHANNEL_ROWS as u32 + 1;
    assert!(picture.height <= plain.height + rows * gantt::ROW_MAX + 20);
    let path = temp_path("64.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (_, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(height, picture.height);
    assert!(has_color(&pixels, palette::Shade::Service.color()));
}

#[test]
fn a_trace_without_devices_has_no_device_rows_or_legend() {
    // Charts of traces without devices are byte for byte what they were
    // before devices were drawn (checked against charts drawn before); here,
    // at least nothing of a device shows.
    for trace in [
        small_trace(),
        deadlock_trace(),
        without_devices(&device_trace()),
    ] {
        assert!(trace.devices.is_empty());
        let picture = gantt::layout(&trace, &GanttOptions::default());
        for text in picture.texts() {
            assert!(
                !(text.contains(" ch") || text.contains("queue") || text.contains("device")),
                "{text}"
            );
            assert!(text != "in service" && text != "queued", "{text}");
        }
        let service = palette::Shade::Service.color();
        assert!(!picture
            .shapes
            .iter()
            .any(|s| matches!(s, Shape::Rect { color, .. } if *color == service)));
    }
}

/// A Python process on two CPUs over 40ms, built by hand as the kernel
/// records it: cpu_a and cpu_b compute and hand the GIL to each other every
/// 5ms on a drop request, and fetcher, whose I/O on "net" completes at 12ms
/// and 30ms, waits 5ms for the GIL each time, asks for it, runs 1ms and
/// drops it for its next request. The GIL is process 1's ("python");
/// process 0 ("main") has none.
fn gil_trace() -> Trace {
    use crate::model::io::DeviceOptions;
    use crate::model::process::ProcessInfo;
    use crate::model::python::gil::{GilAction, GilEvent};
    use crate::trace::{DeviceInfo, IoRecord, ResourceInfo, ResourceKind, StateChange, ThreadInfo};
    use crate::{BlockReason, CpuId, ProcessId, ResourceId, ThreadState};

    let mut trace = Trace::new(Machine {
        cpus: 2,
        ..Machine::default()
    });
    for name in ["main", "python"] {
        trace.processes.push(ProcessInfo { name: name.into() });
    }
    let python = ProcessId(1);
    for name in ["cpu_a", "cpu_b", "fetcher"] {
        trace.threads.push(ThreadInfo {
            name: name.into(),
            process: python,
            parent: None,
            created: Time::ZERO,
            priority: 0,
            nice: 0,
            task_of: None,
        });
    }
    trace.resources.push(ResourceInfo {
        name: "net".into(),
        kind: ResourceKind::Device,
        internal: false,
    });
    let net = ResourceId(0);
    trace.devices.push(DeviceInfo {
        resource: net,
        options: DeviceOptions {
            latency: ms(12),
            bandwidth: None,
            channels: 1,
        },
    });
    let at = |t: u64| Time(ms(t).as_nanos());
    // Fetcher's requests: submitted, completed (the last one runs on).
    let requests = [(0, Some(12)), (18, Some(30)), (36, None)];
    trace.io = requests
        .iter()
        .map(|&(from, to): &(u64, Option<u64>)| IoRecord {
            device: net,
            thread: ThreadId(2),
            bytes: 1 << 20,
            submitted: at(from),
            started: Some((at(from), 0)),
            completed: to.map(at),
            origin: None,
            task: None,
        })
        .collect();
    // Holds: holder, from, to, who asked for the drop (none: voluntary).
    let (a, b, f) = (0u32, 1u32, 2u32);
    let holds = [
        (a, 0, 5, Some(b)),
        (b, 5, 10, Some(a)),
        (a, 10, 15, Some(b)),
        (b, 15, 17, Some(f)),
        (f, 17, 18, None),
        (a, 18, 23, Some(b)),
        (b, 23, 28, Some(a)),
        (a, 28, 33, Some(b)),
        (b, 33, 35, Some(f)),
        (f, 35, 36, None),
        (a, 36, 40, None),
    ];
    let gil = |t: u64, thread: u32, action: GilAction| GilEvent {
        time: at(t),
        process: python,
        thread: ThreadId(thread),
        action,
    };
    let change = |t: u64, thread: u32, state: ThreadState| {
        let cpu = state.on_cpu().then_some(CpuId(thread.min(1) as u16));
        StateChange::new(at(t), ThreadId(thread), state, cpu, None)
    };
    let waiting = ThreadState::Blocked(BlockReason::Gil(python));
    let io = ThreadState::Blocked(BlockReason::Io(net));
    let mut states = vec![change(0, b, waiting), change(0, f, io)];
    for &(holder, from, to, asker) in &holds {
        trace.gil.push(gil(from, holder, GilAction::Took));
        states.push(change(from, holder, ThreadState::Running));
        if to == 40 {
            break;
        }
        if let Some(asker) = asker {
            trace.gil.push(gil(to, asker, GilAction::DropRequest));
        }
        let forced = asker.is_some();
        trace
            .gil
            .push(gil(to, holder, GilAction::Dropped { forced }));
        states.push(change(to, holder, if holder == f { io } else { waiting }));
    }
    states.push(change(12, f, waiting));
    states.push(change(30, f, waiting));
    states.sort_by_key(|c| c.time());
    trace.states = states.into();
    trace.end = at(40);
    trace
}

/// The y of the row labelled `label` (the middle of the row).
fn row_y(picture: &canvas::Picture, label: &str) -> i32 {
    picture
        .shapes
        .iter()
        .find_map(|s| match s {
            Shape::Text { text, y, align, .. }
                if text == label && *align == canvas::Align::Right =>
            {
                Some(*y)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row {label}"))
}

#[test]
fn a_gil_gets_a_row_with_its_holders_and_drop_requests() {
    let trace = gil_trace();
    let path = temp_path("gil.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (width, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(width, 1600);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert_eq!(height, picture.height);
    for color in [
        palette::Shade::GilHeld.color(),
        palette::Shade::Gil.color(),
        palette::FORCED_DROP,
    ] {
        assert!(has_color(&pixels, color), "{color:?} not drawn");
    }

    let texts = picture.texts();
    for text in [
        "gil python",
        "gil held",
        "drop request",
        "forced drop",
        "gil",
    ] {
        assert!(texts.contains(&text), "{text} missing from {texts:?}");
    }
    assert!(!texts.contains(&"gil main"), "{texts:?}");
    // Between the CPU rows and the thread rows.
    let (cpu, gil, thread) = (
        row_y(&picture, "CPU 1"),
        row_y(&picture, "gil python"),
        row_y(&picture, "cpu_a"),
    );
    assert!(cpu < gil && gil < thread, "{cpu} {gil} {thread}");
    // Both holders are named on the GIL row, each on several of its bars.
    for name in ["cpu_a", "cpu_b"] {
        let on_row = picture
            .shapes
            .iter()
            .filter(|s| matches!(s, Shape::Text { text, y, .. } if text == name && *y == gil))
            .count();
        assert!(on_row >= 3, "{name} on {on_row} GIL bars");
    }
    // Eight forced drops end a bar with a dark edge; eight triangles of
    // five rows each mark the requests, and the legend has one of each.
    let count = |color| {
        picture
            .shapes
            .iter()
            .filter(|s| matches!(s, Shape::Rect { color: c, .. } if *c == color))
            .count()
    };
    assert_eq!(count(palette::FORCED_DROP), 8 + 1);
    let ink_rows_on_gil_row = picture
        .shapes
        .iter()
        .filter(|s| {
            matches!(s, Shape::Rect { y0, color, .. }
                if *color == palette::DROP_REQUEST && (gil - 12..gil).contains(y0))
        })
        .count();
    assert_eq!(ink_rows_on_gil_row, 8 * 5);

    let path = temp_path("gil.svg");
    let options = GanttOptions {
        format: ChartFormat::Svg,
        ..GanttOptions::default()
    };
    gantt(&trace, &path, &options).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for text in ["gil python", "cpu_a", "cpu_b", "drop request", "gil held"] {
        assert!(svg.contains(text), "{text} missing");
    }
}

#[test]
fn gil_charts_are_deterministic_and_markers_outline_thread_rows() {
    let options = GanttOptions {
        markers: vec![Marker {
            time: Time(ms(17).as_nanos()),
            label: "fetcher asks".into(),
            threads: vec![ThreadId(2)],
            kind: MarkerKind::Note,
        }],
        ..GanttOptions::default()
    };
    for format in [ChartFormat::Png, ChartFormat::Svg] {
        let options = GanttOptions {
            format,
            ..options.clone()
        };
        let (a, b) = (temp_path("gil-a"), temp_path("gil-b"));
        gantt(&gil_trace(), &a, &options).unwrap();
        gantt(&gil_trace(), &b, &options).unwrap();
        let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert!(bytes_a == bytes_b, "{format:?} differs");
    }
    // The outline goes around fetcher's row, not a row above it.
    let picture = gantt::layout(&gil_trace(), &options);
    let blue = plotters::style::RGBColor(0x34, 0x6a, 0xd0);
    let top = picture
        .shapes
        .iter()
        .filter_map(|s| match s {
            // The outline starts left of the row labels.
            Shape::Rect { x0, y0, color, .. } if *color == blue && *x0 < 16 => Some(*y0),
            _ => None,
        })
        .min()
        .unwrap();
    let fetcher = row_y(&picture, "fetcher");
    assert!(
        (fetcher - gantt::ROW_MAX as i32..fetcher).contains(&top),
        "outline at {top}, fetcher's row at {fetcher}"
    );
}

#[test]
fn a_trace_without_gil_events_has_no_gil_row_or_legend() {
    // Charts of traces without GIL events are byte for byte what they were
    // before GIL rows were drawn (checked against charts drawn before);
    // here, at least nothing of a GIL shows, even with threads waiting for
    // one.
    let mut waits_only = gil_trace();
    waits_only.gil.clear();
    for trace in [small_trace(), deadlock_trace(), device_trace(), waits_only] {
        let picture = gantt::layout(&trace, &GanttOptions::default());
        for text in picture.texts() {
            assert!(!text.starts_with("gil "), "{text}");
            assert!(!["drop request", "forced drop"].contains(&text), "{text}");
        }
        for color in [palette::Shade::GilHeld.color(), palette::FORCED_DROP] {
            assert!(!picture
                .shapes
                .iter()
                .any(|s| matches!(s, Shape::Rect { color: c, .. } if *c == color)));
        }
    }
}

#[test]
fn past_sixty_four_gils_the_rest_are_left_out() {
    use crate::model::process::ProcessInfo;
    use crate::model::python::gil::{GilAction, GilEvent};
    let mut trace = gil_trace();
    trace.gil.clear();
    for p in 0..70u32 {
        trace.processes.push(ProcessInfo {
            name: format!("py{p}"),
        });
        trace.gil.push(GilEvent {
            time: Time(ms(u64::from(p % 30)).as_nanos()),
            process: crate::ProcessId(p + 2),
            thread: ThreadId(p % 3),
            action: GilAction::Took,
        });
    }
    trace.gil.sort_by_key(|e| e.time);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let texts = picture.texts();
    assert!(texts.contains(&"gil py0") && texts.contains(&"gil py63"));
    assert!(!texts.contains(&"gil py64"), "{texts:?}");
    assert!(texts
        .iter()
        .any(|t| t.contains("first 64 of 70 GILs shown")));
    assert!(!texts.contains(&"drop request"));
}

/// `n` hand-offs of the GIL between cpu_a and cpu_b, every 3µs, each on a
/// drop request, in place of the trace's own.
fn busy_gil_trace(n: u64) -> Trace {
    use crate::model::python::gil::{GilAction, GilEvent};
    let mut trace = gil_trace();
    let python = crate::ProcessId(1);
    let event = |i: u64, thread: u64, action| GilEvent {
        time: Time(us(3 * i).as_nanos()),
        process: python,
        thread: ThreadId(thread as u32),
        action,
    };
    trace.gil = Vec::with_capacity(3 * n as usize + 1);
    trace.gil.push(event(0, 0, GilAction::Took));
    for i in 1..=n {
        let (from, to) = ((i + 1) % 2, i % 2);
        trace.gil.push(event(i, to, GilAction::DropRequest));
        let forced = i % 5 != 0;
        trace
            .gil
            .push(event(i, from, GilAction::Dropped { forced }));
        trace.gil.push(event(i, to, GilAction::Took));
    }
    trace.end = trace.end.max(Time(us(3 * n + 3).as_nanos()));
    trace
}

#[test]
fn a_million_gil_handoffs_render() {
    // About a second for the chart in a debug build.
    let trace = busy_gil_trace(1_000_000);
    let path = temp_path("busy-gil.png");
    let started = std::time::Instant::now();
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let took = started.elapsed();
    let (_, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert_eq!(height, picture.height);
    assert!(has_color(&pixels, palette::Shade::GilHeld.color()));
    // Marks stay a few per pixel column at most.
    assert!(
        picture.shapes.len() < 40_000,
        "{} shapes",
        picture.shapes.len()
    );
    assert!(took.as_secs() < 30, "{took:?}");
}

/// `small_trace` with its memory replaced: `samples` of (fraction of the
/// run in percent, MiB in use), on a machine of `machine` bytes.
fn memory_trace(samples: &[(u64, u64)], machine: u64) -> Trace {
    use crate::trace::MemorySample;
    let mut trace = small_trace();
    let end = trace.end.as_nanos();
    trace.machine.memory = machine;
    trace.memory = samples
        .iter()
        .map(|&(percent, mib)| MemorySample {
            time: Time(end * percent / 100),
            used: mib << 20,
        })
        .collect();
    trace.peak_memory = samples.iter().map(|s| s.1 << 20).max().unwrap_or(0);
    trace
}

/// 13MiB, then 27MiB from a quarter of the run, 40MiB from half, and 13MiB
/// again from three quarters: a second and a third process come and go.
fn rising_memory(machine: u64) -> Trace {
    memory_trace(&[(0, 13), (25, 27), (50, 40), (75, 13)], machine)
}

#[test]
fn memory_that_rises_and_falls_gets_a_strip_with_its_peak() {
    let trace = rising_memory(16 << 30);
    let path = temp_path("memory.png");
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let (width, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(width, 1600);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert_eq!(height, picture.height);
    for color in [palette::MEMORY, palette::MEMORY_FILL] {
        assert!(has_color(&pixels, color), "{color:?} not drawn");
    }
    let texts = picture.texts();
    // The legend's entry and the row's label.
    assert_eq!(texts.iter().filter(|&&t| t == "memory").count(), 2);
    assert!(texts.contains(&"peak 40MiB"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.starts_with("limit")), "{texts:?}");
    // Below every thread row.
    let (thread, memory) = (row_y(&picture, "helper"), row_y(&picture, "memory"));
    assert!(thread < memory, "{thread} {memory}");
    // The line rises twice and falls once: its highest pixel is at the top
    // of the line's area, in the middle of the run.
    let line: Vec<(i32, i32, i32)> = picture
        .shapes
        .iter()
        .filter_map(|s| match *s {
            // The strip's, not the legend's swatch.
            Shape::Rect {
                x0, y0, x1, color, ..
            } if color == palette::MEMORY && y0 > memory - 30 => Some((x0, x1, y0)),
            _ => None,
        })
        .collect();
    let top = line.iter().map(|l| l.2).min().unwrap();
    let (x0, x1, _) = *line.iter().find(|l| l.2 == top).unwrap();
    let (left, right) = (line[0].0, line.last().unwrap().1);
    let mid = (left + right) / 2;
    assert!(x0 <= mid + 2 && x1 >= mid && x1 - x0 < (right - left) / 3);

    let path = temp_path("memory.svg");
    let options = GanttOptions {
        format: ChartFormat::Svg,
        ..GanttOptions::default()
    };
    gantt(&trace, &path, &options).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for text in ["memory", "peak 40MiB", "alpha"] {
        assert!(svg.contains(text), "{text} missing");
    }
}

#[test]
fn past_half_the_machine_memory_a_dashed_line_marks_the_limit() {
    let trace = rising_memory(64 << 20);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let texts = picture.texts();
    assert!(texts.contains(&"peak 40MiB") && texts.contains(&"limit 64MiB"));
    // Dashes of six pixels along the whole plot, one pixel high, above the
    // line's top.
    let memory = row_y(&picture, "memory");
    let dashes: Vec<(i32, i32, i32)> = picture
        .shapes
        .iter()
        .filter_map(|s| match *s {
            Shape::Rect {
                x0,
                y0,
                x1,
                y1,
                color,
            } if color == palette::INK && y1 == y0 + 1 && (memory - 30..memory).contains(&y0) => {
                Some((x0, x1, y0))
            }
            _ => None,
        })
        .collect();
    assert!(dashes.len() > 100, "{} dashes", dashes.len());
    assert!(dashes.iter().all(|d| d.2 == dashes[0].2 && d.1 - d.0 <= 6));
    let top = picture
        .shapes
        .iter()
        .filter_map(|s| match *s {
            Shape::Rect { y0, color, .. } if color == palette::MEMORY && y0 > memory - 30 => {
                Some(y0)
            }
            _ => None,
        })
        .min()
        .unwrap();
    assert!(dashes[0].2 < top, "limit at {}, peak at {top}", dashes[0].2);
    // The deterministic bytes hold for the strip too.
    for format in [ChartFormat::Png, ChartFormat::Svg] {
        let options = GanttOptions {
            format,
            ..GanttOptions::default()
        };
        let (a, b) = (temp_path("memory-a"), temp_path("memory-b"));
        gantt(&trace, &a, &options).unwrap();
        gantt(&rising_memory(64 << 20), &b, &options).unwrap();
        let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert!(bytes_a == bytes_b, "{format:?} differs");
    }
}

#[test]
fn flat_memory_draws_no_memory_strip() {
    let mut none = small_trace();
    none.memory.clear();
    let blank = gantt::layout(&none, &GanttOptions::default());
    // One sample, equal values, and a simulated run whose threads come and
    // go on one interpreter (15.6KiB each on 13.2MiB, then all freed at the
    // end): no strip, and the very chart of a trace without memory.
    let one = memory_trace(&[(0, 13)], 16 << 30);
    let equal = memory_trace(&[(0, 13), (30, 13), (60, 13)], 16 << 30);
    let simulated = small_trace();
    assert!(simulated.memory.len() > 2, "{:?}", simulated.memory);
    for trace in [one, equal, simulated] {
        let picture = gantt::layout(&trace, &GanttOptions::default());
        assert!(picture == blank);
        assert!(!picture.texts().iter().any(|t| t.contains("memory")));
        let path = temp_path("flat.svg");
        let options = GanttOptions {
            format: ChartFormat::Svg,
            ..GanttOptions::default()
        };
        gantt(&trace, &path, &options).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!svg.contains("memory") && !svg.contains("peak"));
    }
}

#[test]
fn a_million_memory_samples_render() {
    use crate::trace::MemorySample;
    // A process starts and ends every 3µs, over a second process's 13MiB.
    let mut trace = small_trace();
    let n = 1_000_000u64;
    trace.memory = (0..n)
        .map(|i| MemorySample {
            time: Time(us(3 * i).as_nanos()),
            used: (13 + 13 * (i % 2) + i / 100_000) << 20,
        })
        .collect();
    trace.peak_memory = trace.memory.iter().map(|s| s.used).max().unwrap();
    trace.end = Time(us(3 * n).as_nanos());
    let path = temp_path("busy-memory.png");
    let started = std::time::Instant::now();
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let took = started.elapsed();
    let (_, height, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert_eq!(height, picture.height);
    assert!(has_color(&pixels, palette::MEMORY));
    assert!(picture.texts().contains(&"peak 35MiB"));
    // A fill and a line per pixel column at most.
    let memory_rects = picture
        .shapes
        .iter()
        .filter(|s| {
            matches!(s, Shape::Rect { color, .. }
                if *color == palette::MEMORY || *color == palette::MEMORY_FILL)
        })
        .count();
    assert!(memory_rects <= 2 * 1600, "{memory_rects} rectangles");
    assert!(took.as_secs() < 30, "{took:?}");
}

/// One thread, "worker", that runs for 990µs and then waits 10µs for the
/// mutex "m", `periods` times over (a millisecond each); a second thread,
/// "idle", sleeps throughout. At 800 pixels for a second, a column is
/// 1.25ms: every column is mostly running with a lock wait inside.
fn flicker_trace(periods: u64) -> Trace {
    use crate::model::process::ProcessInfo;
    use crate::trace::{ResourceInfo, ResourceKind, StateChange, ThreadInfo};
    use crate::{BlockReason, CpuId, ResourceId, ThreadState};

    let mut trace = Trace::new(Machine::default());
    trace.processes.push(ProcessInfo {
        name: "main".into(),
    });
    for name in ["worker", "idle"] {
        trace.threads.push(ThreadInfo {
            name: name.into(),
            process: crate::ProcessId(0),
            parent: None,
            created: Time::ZERO,
            priority: 0,
            nice: 0,
            task_of: None,
        });
    }
    trace.resources.push(ResourceInfo {
        name: "m".into(),
        kind: ResourceKind::Mutex,
        internal: false,
    });
    let lock = ThreadState::Blocked(BlockReason::Lock(ResourceId(0)));
    let change = |t: Time, thread: u32, state: ThreadState| {
        StateChange::new(
            t,
            ThreadId(thread),
            state,
            state.on_cpu().then_some(CpuId(0)),
            None,
        )
    };
    let at = |n: u64| Time(us(n).as_nanos());
    let mut states = Vec::with_capacity(2 * periods as usize + 3);
    states.push(change(at(0), 1, ThreadState::Blocked(BlockReason::Sleep)));
    for k in 0..periods {
        states.push(change(at(1000 * k), 0, ThreadState::Running));
        states.push(change(at(1000 * k + 990), 0, lock));
    }
    let end = at(1000 * periods);
    states.push(change(end, 0, ThreadState::Done));
    states.push(change(end, 1, ThreadState::Done));
    trace.states = states.into();
    trace.end = end;
    trace
}

/// The pixels of the row labelled `label` in a chart drawn `width` wide:
/// its rows, from the PNG, each as its RGB bytes.
fn row_pixels(trace: &Trace, width: u32, label: &str, name: &str) -> Vec<Vec<u8>> {
    let options = GanttOptions {
        width,
        ..GanttOptions::default()
    };
    let path = temp_path(name);
    gantt(trace, &path, &options).unwrap();
    let (w, _, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    let picture = gantt::layout(trace, &options);
    let mid = row_y(&picture, label);
    // Thread rows of these charts are at most 22 pixels high.
    let stride = 3 * w as usize;
    (mid - 11..mid + 11)
        .map(|y| pixels[y as usize * stride..(y as usize + 1) * stride].to_vec())
        .collect()
}

/// A thread that runs 990µs and waits 10µs for a lock, a thousand times,
/// drawn 800 pixels wide: every column of its row is mostly running, and
/// before minorities were underlined the row was solid green, the lock
/// colour nowhere in it (only in the legend). Now the lock waits underline
/// the whole row, while the bar stays green above the underline.
#[test]
fn a_brief_recurring_lock_wait_underlines_the_row() {
    let trace = flicker_trace(1000);
    let rows = row_pixels(&trace, 800, "worker", "flicker.png");
    let lock = palette::Shade::Lock.color();
    let running = palette::Shade::Running.color();
    let count = |color| {
        rows.iter()
            .map(|row| count_color(row, color))
            .collect::<Vec<_>>()
    };
    let (locks, greens) = (count(lock), count(running));
    // Two pixel rows of lock colour all along the bar's bottom, green above.
    let underlined: Vec<usize> = (0..rows.len()).filter(|&y| locks[y] > 0).collect();
    assert_eq!(underlined.len(), 2, "{locks:?}");
    let y = underlined[0];
    assert!(locks[y] > 600, "{locks:?}");
    assert!(greens[y - 1] > 600 && greens[..y].iter().filter(|&&n| n > 0).count() >= 8);
    // The idle thread, asleep throughout, has no underline.
    let idle = row_pixels(&trace, 800, "idle", "flicker-idle.png");
    assert!(!idle.iter().any(|row| has_color(row, lock)));
    let picture = gantt::layout(&trace, &GanttOptions::default());
    assert!(picture
        .texts()
        .iter()
        .any(|t| t.contains("underlined: states too brief to fill a pixel")));
}

/// How many pixels of `pixels` are `color`.
fn count_color(pixels: &[u8], color: plotters::style::RGBColor) -> usize {
    let plotters::style::RGBColor(r, g, b) = color;
    pixels.chunks(3).filter(|p| *p == [r, g, b]).count()
}

/// Runs whose waits span many pixels, and whose only sub-pixel states are
/// switches, draw without underlines (the notes would say so): these charts
/// were byte-identical before and after underlines existed.
#[test]
fn charts_without_brief_waits_have_no_underline() {
    for trace in [small_trace(), deadlock_trace(), device_trace(), gil_trace()] {
        let picture = gantt::layout(&trace, &GanttOptions::default());
        assert!(
            !picture.texts().iter().any(|t| t.contains("underlined")),
            "{:?}",
            picture.texts()
        );
    }
}

#[test]
fn a_million_brief_lock_waits_render_underlined() {
    // 1,000,000 intervals over 500s; about a second and a half in a debug
    // build, a tenth of that in release.
    let trace = flicker_trace(500_000);
    let path = temp_path("million-flicker.png");
    let started = std::time::Instant::now();
    gantt(&trace, &path, &GanttOptions::default()).unwrap();
    let took = started.elapsed();
    let (_, _, pixels) = decode(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(took.as_secs() < 30, "{took:?}");
    assert!(count_color(&pixels, palette::Shade::Lock.color()) > 2000);
    let picture = gantt::layout(&trace, &GanttOptions::default());
    let lock = palette::Shade::Lock.color();
    // The legend's swatch, and the underline coalesced into one rectangle
    // along the row.
    let underlines = picture
        .shapes
        .iter()
        .filter(|s| matches!(s, Shape::Rect { color, .. } if *color == lock))
        .count();
    assert_eq!(underlines, 2);
    assert!(
        picture.shapes.len() < 200,
        "{} shapes",
        picture.shapes.len()
    );
}

#[test]
fn a_pools_threads_are_drawn_under_its_queue_row() {
    let machine = Machine {
        cpus: 2,
        ..Machine::default()
    };
    let mut sim = Simulation::new(machine).unwrap();
    let pool = sim.thread_pool(crate::ProcessId::MAIN, "pool", 2);
    sim.add_thread("main", move |ctx| {
        let futures: Vec<_> = (0..4)
            .map(|_| pool.submit(ctx, "job", |ctx| ctx.compute(ms(2))))
            .collect();
        // A thread started after the workers, not one of them.
        let other = ctx.start_thread("other", |ctx| ctx.compute(ms(1)));
        for future in &futures {
            future.result(ctx).unwrap();
        }
        ctx.join(other);
    });
    let run = sim.run();
    assert!(run.completed(), "{:?}", run.outcome);
    let picture = gantt::layout(&run.trace, &GanttOptions::default());
    let y = |label| row_y(&picture, label);
    assert!(y("main") < y("pool queue"));
    assert!(y("pool queue") < y("↳ pool-0"));
    assert!(y("↳ pool-0") < y("↳ pool-1"));
    assert!(y("↳ pool-1") < y("other"));
}
