//! The script layer through its Rust API: bindings, errors, limits, and
//! property tests over random and mangled scripts (scripts are untrusted).

use proptest::prelude::*;
use sim_core::script::{ErrorStage, Output, RunOptions, Script, ScriptOutcome};

fn run(source: &str) -> ScriptOutcome {
    Script::compile("test.rhai", source)
        .expect("the script compiles")
        .run(&RunOptions::default())
}

fn prints(outcome: &ScriptOutcome) -> Vec<String> {
    outcome
        .output
        .iter()
        .filter_map(|o| match o {
            Output::Print(text) => Some(text.clone()),
            Output::Run(_) | Output::Chart(_) => None,
        })
        .collect()
}

#[test]
fn a_declared_machine_is_run_after_the_script() {
    let outcome = run(r#"
        let m = machine(#{ cpus: 2 });
        m.add_thread("a", || compute(ms(3)));
        m.add_thread("b", || { compute(us(500)); sleep(ms(1)); });
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.runs.len(), 1);
    assert_eq!(outcome.runs[0].stats.makespan.as_nanos(), 3_000_000);
    assert_eq!(outcome.output, vec![Output::Run(0)]);
}

#[test]
fn join_returns_the_body_value_and_a_body_has_its_own_copy_of_what_it_captures() {
    let outcome = run(r#"
        let m = machine();
        let finished = [];
        m.add_thread("parent", || {
            let child = start_thread("child", || { compute(ms(2)); 40 + 2 });
            let value = child.join();
            finished.push(child.name); // its own copy: the script's stays empty
            print(`child returned ${value} at ${now()}`);
        });
        let r = m.run();
        print(`makespan ${r.makespan}, finished ${finished}`);
        print(r.stats("child").cpu);
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let run = &outcome.runs[0];
    // The parent pays the 30us spawn cost and blocks in join; the child
    // runs after a 2us switch, ends at 2.032ms, and the parent resumes after
    // another 2us switch.
    assert_eq!(run.trace.logs[0].text, "child returned 42 at 2.034ms");
    assert_eq!(prints(&outcome), ["makespan 2.034ms, finished []", "2ms"]);
}

#[test]
fn durations_convert_compare_and_print() {
    let outcome = run(r#"
        print(ms(1.5));
        print(us(250) * 4 == ms(1));
        print(sec(1) / ms(250));
        print(ms(10) - ms(2.5));
        print(ms(3).us);
        print(type_of(ns(1)));
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        prints(&outcome),
        ["1.5ms", "true", "4.0", "7.5ms", "3000.0", "Duration"]
    );
}

#[test]
fn a_negative_duration_is_an_error_with_position() {
    let outcome = run("let d = ms(1) - ms(2);");
    let error = outcome.error.expect("an error");
    assert_eq!(error.position, Some((1, 15)));
    assert!(error.message.contains("negative"), "{error}");
}

#[test]
fn a_variable_handle_reads_its_final_value_after_the_run_and_says_what_to_use_otherwise() {
    let outcome = run(r#"
        let m = machine();
        let x = m.variable("x", 5);
        m.add_thread("a", || { x.fetch_add(2); });
        let r = m.run();
        print(`${x.value} ${r.value("x")}`);
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(prints(&outcome), vec!["7 7"]);

    let error = run("let m = machine();\nlet y = m.variable(\"y\", 0);\nprint(y.value);")
        .error
        .expect("an error");
    assert!(error.message.contains("has not run yet"), "{error}");
    assert_eq!(error.position, Some((3, 9)));

    let outcome = run(r#"
        let m = machine();
        let x = m.variable("x", 5);
        m.add_thread("a", || { let v = x.value; });
    "#);
    let error = outcome.error.expect("an error");
    assert!(error.message.contains("with v.load()"), "{error}");
}

#[test]
fn operations_at_the_top_level_are_refused() {
    let error = run("compute(ms(1));").error.expect("an error");
    assert!(
        error.message.contains("operation of a simulated thread"),
        "{error}"
    );
    assert_eq!(error.position, Some((1, 1)));
}

#[test]
fn running_a_machine_inside_a_body_is_refused() {
    let outcome = run(r#"
        let inner = machine();
        let m = machine();
        m.add_thread("a", || { compute(ms(1)); inner.run(); });
    "#);
    let error = outcome.error.expect("an error");
    assert!(error.message.contains("inside a thread body"), "{error}");
    assert_eq!(error.position.map(|p| p.0), Some(4));
}

#[test]
fn each_evaluation_starts_afresh() {
    let script = Script::compile(
        "afresh.rhai",
        r#"
        let m = machine();
        let count = m.variable("count", 0);
        for i in 0..3 { m.add_thread(`t${i}`, || { compute(ms(1)); count.fetch_add(1); }); }
        let r = m.run();
        print(r.value("count"));
    "#,
    )
    .unwrap();
    for _ in 0..2 {
        let outcome = script.run(&RunOptions::default());
        assert_eq!(prints(&outcome), ["3"]);
    }
}

#[test]
fn threads_block_on_a_captured_handle_one_after_another() {
    // Rhai write-locks a shared (captured) variable during a method call; a
    // blocking method must not leave the next caller a "data race".
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 2 });
        let gate = m.semaphore("gate", 0);
        let ch = m.channel("ch", 1);
        let got = m.variable("got", 0);
        m.add_thread("a", || { gate.acquire(); got.fetch_add(ch.recv()); });
        m.add_thread("b", || { gate.acquire(); got.fetch_add(ch.recv() * 10); });
        m.add_thread("opener", || {
            sleep(ms(1));
            gate.release();
            gate.release();
            ch.send(1);
            ch.send(2);
        });
        let r = m.run();
        print(r.value("got"));
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(prints(&outcome), ["21"]);
}

#[test]
fn unlocking_a_mutex_held_by_another_thread_names_the_line() {
    let outcome = run(r#"
        let m = machine(#{ cpus: 2 });
        let bus = m.mutex("bus");
        m.add_thread("holder", || { bus.lock(); compute(ms(5)); bus.unlock(); });
        m.add_thread("intruder", || {
            compute(ms(1));
            bus.unlock();
        });
    "#);
    let error = outcome.error.expect("a misuse");
    assert_eq!(error.position, Some((7, 17)));
    assert!(
        error.message.contains("in thread 'intruder' at 1ms"),
        "{error}"
    );
    assert!(
        error
            .message
            .contains("mutex 'bus' is not held by this thread"),
        "{error}"
    );
}

#[test]
fn a_resource_of_another_machine_is_refused() {
    let outcome = run(r#"
        let other = machine();
        let foreign = other.mutex("foreign");
        let m = machine();
        m.add_thread("a", || foreign.lock());
        m.run();
    "#);
    let error = outcome.error.expect("an error");
    assert!(error.message.contains("another machine"), "{error}");
    assert_eq!(error.position.map(|p| p.0), Some(5));
}

#[test]
fn an_unknown_scheduler_names_the_choices() {
    let error = run(r#"machine(#{ scheduler: "lottery" });"#)
        .error
        .expect("an error");
    assert!(error.message.contains("lottery"), "{error}");
    assert!(error.hint.unwrap().contains("fair"));
}

#[test]
fn an_endless_body_is_a_limit_error() {
    let outcome = run(r#"
        let m = machine();
        m.add_thread("a", || { compute(ms(1)); loop { } });
    "#);
    let error = outcome.error.expect("an error");
    assert_eq!(error.stage, ErrorStage::Limit);
    assert!(error.message.contains("endless loop"), "{error}");
    assert_eq!(outcome.runs[0].stats.makespan.as_nanos(), 1_000_000);
}

#[test]
fn large_strings_are_refused() {
    let outcome = run(r#"let s = "x"; loop { s += s; }"#);
    let error = outcome.error.expect("an error");
    assert_eq!(error.stage, ErrorStage::Limit);
}

#[test]
fn a_seed_selects_the_random_chooser_reproducibly() {
    let source = r#"
        let m = machine(#{ cpus: 2 });
        for i in 0..6 { m.add_thread(`t${i}`, || { for k in 0..5 { compute(us(10)); sleep(us(10)); } }); }
    "#;
    let script = Script::compile("seeded.rhai", source).unwrap();
    let seeded = |seed| {
        let outcome = script.run(&RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        });
        outcome.runs[0].trace.to_ron().unwrap()
    };
    assert_eq!(seeded(3), seeded(3));
}

/// A statement of a random body: operations, loops and thread starts.
fn statement() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0u32..2000).prop_map(|n| format!("compute(us({n}));")),
        (0u32..2000).prop_map(|n| format!("sleep(us({n}));")),
        Just("yield_now();".to_string()),
        Just("let t = now();".to_string()),
        Just("print(now());".to_string()),
        (0u32..500).prop_map(|n| format!(
            "let h = start_thread(\"c\", || {{ compute(us({n})); 1 }}); h.join();"
        )),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        (1u32..4, prop::collection::vec(inner, 1..4))
            .prop_map(|(n, body)| format!("for i in 0..{n} {{ {} }}", body.join(" ")))
    })
}

/// A random, valid scenario script.
fn scenario() -> impl Strategy<Value = String> {
    (
        1u32..4,
        prop_oneof![Just("fifo"), Just("rr"), Just("priority"), Just("fair")],
        prop::collection::vec(prop::collection::vec(statement(), 1..5), 1..5),
    )
        .prop_map(|(cpus, scheduler, threads)| {
            let mut source = format!(
                "let m = machine(#{{ cpus: {cpus}, scheduler: \"{scheduler}\", quantum: us(700) }});\n"
            );
            for (i, body) in threads.iter().enumerate() {
                source += &format!("m.add_thread(\"t{i}\", || {{ {} }});\n", body.join(" "));
            }
            source
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random valid scenarios complete, and twice give the same trace.
    #[test]
    fn random_scenarios_complete_deterministically(source in scenario()) {
        let script = Script::compile("random.rhai", &source).unwrap();
        let first = script.run(&RunOptions::default());
        prop_assert!(first.error.is_none(), "{:?}\n{}", first.error, source);
        prop_assert!(first.runs[0].outcome == sim_core::Outcome::Completed);
        let second = script.run(&RunOptions::default());
        prop_assert_eq!(
            first.runs[0].trace.to_ron().unwrap(),
            second.runs[0].trace.to_ron().unwrap()
        );
    }

    /// Mangled scripts (a random cut and a random insertion) never panic:
    /// they run or fail with an error that has a message.
    #[test]
    fn mangled_scripts_never_panic(
        source in scenario(),
        cut in 0usize..400,
        junk in prop_oneof![
            Just("(".to_string()), Just("}".to_string()), Just("compute(5);".to_string()),
            Just("loop {}".to_string()), Just("m.run();".to_string()),
            Just("sleep(ms(-1));".to_string()), Just("h.join();".to_string()),
            "[ -~]{0,8}",
        ],
    ) {
        let cut = cut.min(source.len());
        let cut = (0..=cut).rev().find(|&i| source.is_char_boundary(i)).unwrap();
        let mangled = format!("{}{}{}", &source[..cut], junk, &source[cut..]);
        match Script::compile("mangled.rhai", &mangled) {
            Err(error) => prop_assert!(!error.message.is_empty()),
            Ok(script) => {
                let outcome = script.run(&RunOptions::default());
                if let Some(error) = outcome.error {
                    prop_assert!(!error.message.is_empty());
                    prop_assert!(!error.to_string().is_empty());
                }
            }
        }
    }
}

#[test]
fn io_handles_name_their_device_and_bytes_and_compare_by_request() {
    let outcome = run(r#"
        let m = machine(#{ cpus: 1, preset: "textbook" });
        let p = m.add_process("server");
        let disk = p.device("disk", #{ latency: ms(1), bandwidth: "1MB/s", channels: 2 });
        let inbox = m.channel("inbox", 1);
        p.add_thread("main", || {
            let a = disk.submit(1000);
            let b = disk.submit(3000);
            let ep = epoll();
            ep.add(a);
            ep.add(b);
            ep.add(inbox.readable());
            print(`${a.device} ${a.bytes} ${a == a} ${a == b} ${a != b} ${ep.len()}`);
            let first = ep.wait();
            print(`${first.len()} ${first[0] == a} at ${now()}`);
            print(`removed ${ep.remove(b)} ${ep.remove(b)}, left ${ep.len()}, ready ${b.ready()}`);
            b.wait();
            print(`b done at ${now()}`);
            print(`timed out: ${ep.wait(ms(1)).len()} at ${now()}`);
        });
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let log: Vec<&str> = outcome.runs[0]
        .trace
        .logs
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        log,
        [
            "disk 1000 true false true 3",
            "1 true at 2ms",
            "removed true false, left 1, ready false",
            "b done at 4ms",
            "timed out: 0 at 5ms",
        ]
    );
}

#[test]
fn a_bare_zero_is_a_duration_in_settings() {
    let outcome = run(r#"
        let m = machine(#{ context_switch: 0, thread_spawn: 0, ipc_cost: 0 });
        m.add_thread("a", || compute(ms(1)));
        m.add_thread("b", || compute(ms(1)));
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.runs[0].stats.makespan.as_nanos(), 2_000_000);
    // Any other bare number keeps its error.
    let outcome = run(r#"let m = machine(#{ context_switch: 5 });"#);
    assert!(outcome.error.is_some());
}

#[test]
fn a_loop_variable_captured_by_thread_and_task_closures_is_one_per_iteration() {
    let outcome = run(r#"
        let m = machine();
        let lp = m.add_event_loop("loop");
        for i in 0..3 {
            m.add_thread(`w${i}`, || compute(ms(i + 1)));
            lp.add_task(`t${i}`, || await_sleep(ms(10 * (i + 1))));
        }
        let x = 1;
        m.add_thread("copy", || { x += 1; print(`inside ${x}`); });
        x = 100; // after the declaration: the thread kept 1
        let r = m.run();
        print(`${r.stats("w0").cpu} ${r.stats("w1").cpu} ${r.stats("w2").cpu}`);
        print(`${r.stats("t0").end} ${r.stats("t2").end} ${x}`);
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.runs[0].trace.logs[0].text, "inside 2");
    let printed = prints(&outcome);
    assert_eq!(printed[0], "1ms 2ms 3ms");
    assert!(printed[1].ends_with(" 100"), "{printed:?}");
    assert!(printed[1].starts_with("10."), "{printed:?}");
}

#[test]
fn an_rlock_lets_its_owner_in_again() {
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 2 });
        let r = m.rlock("r");
        let x = m.variable("x", 0);
        fn add(r, x) { r.lock(); x.store(x.load() + 1); r.unlock(); }
        for t in ["a", "b"] {
            m.add_thread(t, || { r.lock(); add(r, x); compute(ms(1)); r.unlock(); });
        }
        let run = m.run();
        print(`${run.value("x")} ${run.makespan}`);
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(prints(&outcome), ["2 2ms"]);
    assert!(outcome.runs[0].trace.races.is_empty());
}

#[test]
fn semaphores_try_time_out_count_and_bound() {
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 2 });
        let s = m.semaphore("s", 1);
        let b = m.bounded_semaphore("b", 1);
        m.add_thread("holder", || { s.acquire(); compute(ms(3)); s.release(); });
        m.add_thread("other", || {
            let tried = s.try_acquire();
            let timed = s.acquire(ms(1));
            let later = s.acquire(ms(5));
            print(`${tried} ${timed} ${later} ${s.value()} at ${now()}`);
            b.release();
        });
        m.run();
    "#);
    assert_eq!(
        outcome.runs[0].trace.logs[0].text,
        "false false true 0 at 3ms"
    );
    let error = outcome.error.expect("the bounded release fails");
    assert!(error.message.contains("bounded semaphore 'b'"), "{error:?}");
    assert_eq!(error.position.map(|p| p.0), Some(11));
}

#[test]
fn wait_for_checks_its_predicate_around_every_wait_and_wait_times_out() {
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 2 });
        let lock = m.mutex("lock");
        let cv = m.condvar("cv");
        let items = m.variable("items", 0);
        m.add_thread("consumer", || {
            lock.lock();
            let timed_out = !cv.wait(lock, ms(1));
            cv.wait_for(lock, || items.load() >= 2);
            print(`${timed_out} ${items.load()} at ${now()}`);
            lock.unlock();
        });
        m.add_thread("producer", || {
            for i in 0..3 {
                compute(ms(2));
                lock.lock();
                items.fetch_add(1);
                cv.notify_all();
                lock.unlock();
            }
        });
        m.run();
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.runs[0].trace.logs[0].text, "true 2 at 4ms");
}

#[test]
fn an_event_is_set_waited_for_cleared_and_timed_out() {
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 2 });
        let ev = m.event("go");
        m.add_thread("waiter", || {
            let first = ev.wait(ms(1));
            let second = ev.wait();
            print(`${first} ${second} ${ev.is_set()} at ${now()}`);
            ev.clear();
            print(`${ev.is_set()}`);
        });
        m.add_thread("setter", || { compute(ms(2)); ev.set(); });
        m.run();
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let logs: Vec<&str> = outcome.runs[0]
        .trace
        .logs
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(logs, ["false true true at 2ms", "false"]);
}

#[test]
fn a_countdown_waits_for_all_its_signals() {
    let outcome = run(r#"
        let m = machine(#{ preset: "textbook", cpus: 3 });
        let done = m.countdown("done", 2);
        for i in 1..3 {
            m.add_thread(`worker${i}`, || { compute(ms(i)); done.signal(); });
        }
        m.add_thread("main", || { done.wait(); print(`open at ${now()}`); });
        m.run();
    "#);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.runs[0].trace.logs[0].text, "open at 2ms");
}

/// A sweep of 5 models over 6 connection counts and 2 CPU shares: rows
/// for every chart kind (6 columns × 5 series, a 5 × 6 heatmap).
const SWEEP: &str = r#"
    let rows = [];
    let models = ["threads", "processes", "asyncio", "pool", "futures"];
    for (model, k) in models {
        for connections in [1, 10, 100, 1000, 10000, 100000] {
            for share in [0.5, 1.0] {
                let latency = (k + 1) * 3.5 + connections / 1000 + share;
                rows.push(#{ model: model, connections: connections, share: share,
                             latency_ms: latency, throughput: 1234.5 * (k + 1) * share,
                             winner: models[(connections + k) % 5] });
            }
        }
    }
    let one = rows.filter(|r| r.share == 1.0);
    let files = [];
    for ext in ["png", "svg"] {
        files.push(chart(`bars.${ext}`, one, #{ kind: "bars", x: "connections", y: "latency_ms",
                                                series: "model", title: "Latency" }));
        files.push(chart(`lines.${ext}`, one, #{ kind: "lines", x: "connections", y: ["latency_ms", "throughput"],
                                                 series: "model", log_x: true, log_y: true }));
        files.push(chart(`nested/heatmap.${ext}`, one, #{ kind: "heatmap", x: "connections", row: "model",
                                                          value: "throughput", winner: "winner" }));
    }
    let m = machine(#{ cpus: 2 });
    m.add_thread("a", || compute(ms(3)));
    let r = m.run();
    files.push(chart("durations.png", [#{ cpus: 2, makespan: r.makespan }, #{ cpus: 1, makespan: ms(6) }],
                     #{ kind: "bars", x: "cpus", y: "makespan" }));
    print(files.len());
"#;

/// Decodes a PNG, checks it is not one flat colour, and gives its size.
fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixel data");
    let pixels = &pixels[..info.buffer_size()];
    let distinct: std::collections::BTreeSet<&[u8]> = pixels.chunks(3).collect();
    assert!(distinct.len() > 20, "{} colours", distinct.len());
    (info.width, info.height)
}

fn out_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn chart_draws_bars_lines_and_heatmaps_in_png_and_svg_byte_identical_across_runs() {
    let script = Script::compile("sweep.rhai", SWEEP).unwrap();
    let names = [
        "bars.png",
        "lines.png",
        "nested/heatmap.png",
        "bars.svg",
        "lines.svg",
        "nested/heatmap.svg",
        "durations.png",
    ];
    let mut drawn = Vec::new();
    for attempt in 0..2 {
        let dir = out_dir(&format!("charts-{attempt}"));
        let outcome = script.run(&RunOptions {
            out_dir: dir.clone(),
            ..RunOptions::default()
        });
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(prints(&outcome), ["7"]);
        let charts: Vec<String> = outcome
            .output
            .iter()
            .filter_map(|o| match o {
                Output::Chart(path) => Some(path.clone()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = names
            .iter()
            .map(|n| dir.join(n).display().to_string())
            .collect();
        assert_eq!(charts, expected);
        let bytes: Vec<Vec<u8>> = names
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect();
        for (name, bytes) in names.iter().zip(&bytes) {
            if name.ends_with(".png") {
                let (width, height) = decode_png(bytes);
                assert!(width >= 800 && height >= 200, "{name}: {width}x{height}");
            } else {
                let svg = String::from_utf8_lossy(bytes);
                assert!(svg.contains("<svg") && svg.contains("<text"), "{name}");
            }
        }
        // The SVG carries the texts: legend, categories, cell values and
        // winners.
        let heatmap = String::from_utf8_lossy(&bytes[5]).into_owned();
        for text in ["futures", "100000", "6172", "throughput"] {
            assert!(heatmap.contains(text), "{text} in the heatmap");
        }
        let bars = String::from_utf8_lossy(&bytes[3]).into_owned();
        for text in ["Latency", "asyncio", "connections", "latency_ms"] {
            assert!(bars.contains(text), "{text} in the bars");
        }
        let durations = std::fs::read(dir.join("durations.png")).unwrap();
        assert!(!durations.is_empty());
        drawn.push(bytes);
    }
    assert!(drawn[0] == drawn[1], "the charts differ between two runs");
}

#[test]
fn durations_are_plotted_in_the_unit_of_the_largest() {
    let dir = out_dir("chart-durations");
    let outcome = Script::compile(
        "d.rhai",
        r#"chart("d.svg", [#{ n: 1, t: ms(250) }, #{ n: 2, t: us(1500) }], #{ kind: "lines", x: "n", y: "t" });"#,
    )
    .unwrap()
    .run(&RunOptions {
        out_dir: dir.clone(),
        ..RunOptions::default()
    });
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let svg = std::fs::read_to_string(dir.join("d.svg")).unwrap();
    assert!(svg.contains("t (ms)"), "{svg}");
}

#[test]
fn without_charts_chart_and_gantt_draw_nothing_and_return_their_path() {
    let dir = out_dir("no-charts");
    let outcome = Script::compile(
        "quiet.rhai",
        r#"
        let m = machine();
        m.add_thread("a", || compute(ms(1)));
        let r = m.run();
        print(r.gantt("g.png"));
        print(chart("c.png", [#{ x: 1, y: 2 }], #{ kind: "bars", x: "x", y: "y" }));
        "#,
    )
    .unwrap()
    .run(&RunOptions {
        out_dir: dir.clone(),
        charts: false,
        ..RunOptions::default()
    });
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        prints(&outcome),
        [
            dir.join("g.png").display().to_string(),
            dir.join("c.png").display().to_string()
        ]
    );
    assert!(!dir.exists());
    assert!(!outcome.output.iter().any(|o| matches!(o, Output::Chart(_))));
}

#[test]
fn chart_errors_name_the_line_the_row_and_the_key() {
    let cases = [
        (
            r#"#{ kind: "pie", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }]",
            "unknown kind \"pie\"",
        ),
        (
            r#"#{ x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }]",
            "need a `kind`",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b", colour: "red" }"#,
            "[#{ a: 1, b: 2 }]",
            "a bars chart has no option `colour`",
        ),
        (
            r#"#{ kind: "bars", x: "a" }"#,
            "[#{ a: 1, b: 2 }]",
            "needs the option `y`",
        ),
        (
            r#"#{ kind: "heatmap", x: "a", value: "b" }"#,
            "[#{ a: 1, b: 2 }]",
            "needs the option `row`",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }, #{ a: 2, c: 3 }]",
            "rows[1] has no key \"b\"",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            r#"[#{ a: 1, b: "fast" }]"#,
            "rows[0].b is the string \"fast\", not a number",
        ),
        (
            r#"#{ kind: "lines", x: "a", y: "b" }"#,
            r#"[#{ a: "one", b: 1 }]"#,
            "rows[0].a is the string \"one\", not a number",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }, 5]",
            "rows[1] is i64, not a map",
        ),
        (r#"#{ kind: "bars", x: "a", y: "b" }"#, "[]", "no rows"),
        (
            r#"#{ kind: "heatmap", x: "a", row: "a", value: "a" }"#,
            "{ let r = []; for i in 0..201 { r.push(#{ a: i }); } r }",
            "201 columns (a): a chart holds at most 200",
        ),
        (
            r#"#{ kind: "lines", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }, #{ a: 1.0, b: 3 }]",
            "rows[0] and rows[1] both give b at the same a",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 1e308 * 10.0 }]",
            "rows[0].b is inf, not a finite number",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b", log_y: true }"#,
            "[#{ a: 1, b: 0 }]",
            "log_y needs values above zero, but rows[0].b is 0",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }, #{ a: 1, b: 3 }]",
            "rows[0] and rows[1] both give b for a = 1",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b" }"#,
            "[#{ a: 1, b: 2 }, #{ a: 2, b: ms(3) }]",
            "b mixes durations and plain numbers",
        ),
        (
            r#"#{ kind: "bars", x: "a", y: "b", log_y: "yes" }"#,
            "[#{ a: 1, b: 2 }]",
            "option `log_y` must be true or false",
        ),
    ];
    for (options, rows, expected) in cases {
        let source =
            format!("let rows = {rows};\nlet n = 1;\nchart(\"x.png\", rows, {options});\n");
        let outcome = Script::compile("bad.rhai", &source)
            .unwrap()
            .run(&RunOptions {
                out_dir: out_dir("chart-errors"),
                ..RunOptions::default()
            });
        let error = outcome.error.expect("an error");
        assert!(
            error.message.contains(expected),
            "{expected:?} not in {:?}",
            error.message
        );
        assert!(
            error.message.starts_with("chart(\"x.png\", ...): "),
            "{}",
            error.message
        );
        assert_eq!(error.position.map(|p| p.0), Some(3), "{expected}");
        assert!(error.hint.is_some(), "{expected}");
    }
    let outcome = run(r#"chart("../x.png", [#{ a: 1 }], #{ kind: "bars", x: "a", y: "a" });"#);
    let error = outcome.error.expect("an error");
    assert!(
        error.message.contains("relative path without `..`"),
        "{}",
        error.message
    );
}

#[test]
fn set_values_are_top_level_constants_and_param_reads_them_with_a_default() {
    let source = r#"
        let cpus = if is_def_var("cpus") { cpus } else { 1 };
        print(`${cpus} ${type_of(cpus)}`);
        print(`${param("share", 0.5)} ${param("model", "threads")} ${param("gil", false)} ${param("missing", 7)}`);
        let m = machine(#{ cpus: cpus });
        m.add_thread("t", || print(`work ${work}`));
        m.run();
    "#;
    let script = Script::compile("set.rhai", source).unwrap();
    let set = |pairs: &[(&str, &str)]| {
        script.run(&RunOptions {
            constants: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..RunOptions::default()
        })
    };
    let outcome = set(&[
        ("cpus", "4"),
        ("share", "1"),
        ("model", "asyncio"),
        ("gil", "true"),
        ("work", "2.5"),
    ]);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(prints(&outcome), ["4 i64", "1.0 asyncio true 7"]);
    assert_eq!(outcome.runs[0].stats.cpus.len(), 4);
    assert_eq!(outcome.runs[0].trace.logs[0].text, "work 2.5");

    // Without them the defaults hold (and the body's `work` is undefined).
    let outcome = set(&[]);
    assert_eq!(prints(&outcome)[..2], ["1 i64", "0.5 threads false 7"]);
    assert!(outcome.error.is_some());

    // A value of the wrong type for param's default is an error at its line.
    let outcome = set(&[("share", "half"), ("work", "1")]);
    let error = outcome.error.expect("a type error");
    assert!(
        error
            .message
            .contains("--set share=half gives a string, but param(\"share\", 0.5) expects a float"),
        "{}",
        error.message
    );
    assert_eq!(error.position.map(|p| p.0), Some(4));

    // Assigning to a set value is Rhai's error about a constant, at its line.
    let outcome = Script::compile("assign.rhai", "let x = 1;\nlimit = 5;\n")
        .unwrap()
        .run(&RunOptions {
            constants: vec![("limit".into(), "3".into())],
            ..RunOptions::default()
        });
    let error = outcome.error.expect("a constant error");
    assert!(error.message.contains("limit"), "{}", error.message);
    assert_eq!(error.position.map(|p| p.0), Some(2));
}

#[test]
fn a_run_charts_its_threads() {
    let dir = out_dir("run-chart");
    let outcome = Script::compile(
        "threads.rhai",
        r#"
        let m = machine(#{ cpus: 1, scheduler: "rr", quantum: ms(1) });
        m.add_thread("a", || { compute(ms(3)); sleep(ms(2)); });
        m.add_thread("b", || compute(ms(4)));
        let r = m.run();
        r.chart("threads.svg", #{ kind: "bars", x: "thread", y: ["cpu", "ready", "blocked"] });
        "#,
    )
    .unwrap()
    .run(&RunOptions {
        out_dir: dir.clone(),
        ..RunOptions::default()
    });
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let svg = std::fs::read_to_string(dir.join("threads.svg")).unwrap();
    for text in [
        "cpu",
        "ready",
        "blocked",
        "cpu, ready, blocked (ms)",
        "\na\n",
        "\nb\n",
    ] {
        assert!(svg.contains(text), "{text} in {svg}");
    }
}
