//! Issue 15: rough edges a newcomer hits in the first minutes.

use std::time::{Duration, Instant};

use simcli_tests::{run_simcli, scratch};

/// Writes `source` as `NAME.rhai` in a scratch folder, runs
/// `simcli COMMAND script ARGS...` and returns the exit code, stdout and
/// stderr.
fn simcli_on(
    name: &str,
    source: &str,
    command: &str,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let dir = scratch(&format!("newcomer-{name}"));
    let path = dir.join(format!("{name}.rhai"));
    std::fs::write(&path, source).unwrap();
    let mut all = vec![command, path.to_str().unwrap()];
    if command == "run" {
        all.extend(["--out", dir.to_str().unwrap()]);
    }
    all.extend(args);
    let output = run_simcli(&all);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bare_zero_is_a_duration_and_other_bare_numbers_keep_their_error() {
    let zero = "let m = machine(#{ context_switch: 0, quantum: \"1ms\", scheduler: \"cfs\" });\n\
                m.add_thread(\"a\", || { compute(0); sleep(0); compute_nogil(0); compute(ms(1)); });\n";
    let (code, out, err) = simcli_on("zero", zero, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("context switch 0s"), "{out}");
    assert!(out.contains("makespan: 1ms"), "{out}");

    let five = "let m = machine();\nm.add_thread(\"a\", || compute(5));\n";
    let (code, _, err) = simcli_on("five", five, "run", &["--no-chart"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no function matches compute (i64)"), "{err}");
    assert!(err.contains("durations are written ms(5)"), "{err}");

    let setting = "let m = machine(#{ context_switch: 5 });\n";
    let (code, _, err) = simcli_on("setting", setting, "run", &["--no-chart"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("context_switch must be a duration, not i64"),
        "{err}"
    );
}

#[test]
fn sleep_of_a_bare_number_is_an_error_not_a_wall_clock_pause() {
    // Rhai's own sleep(seconds) would pause the real process.
    let source = "let m = machine();\nm.add_thread(\"a\", || sleep(3));\n";
    let started = Instant::now();
    let (code, _, err) = simcli_on("sleep3", source, "run", &["--no-chart"]);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(code, Some(1));
    assert!(err.contains("no function matches sleep (i64)"), "{err}");
}

#[test]
fn an_unclosed_brace_is_reported_where_it_opens() {
    let source = "let m = machine();\n\
                  m.add_thread(\"a\", || {\n    compute(ms(1))\n";
    let (code, _, err) = simcli_on("unclosed", source, "check", &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("this `{` is never closed") && err.contains("unclosed.rhai:2:22"),
        "{err}"
    );
    assert!(!err.contains("';'"), "{err}");
}

#[test]
fn a_report_with_only_channels_has_a_header() {
    let source = "let m = machine();\nlet ch = m.channel(\"pipe\", 1);\n\
                  m.add_thread(\"tx\", || ch.send(1));\nm.add_thread(\"rx\", || ch.recv());\n";
    let (code, out, err) = simcli_on("channels", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{err}");
    let pipe = out
        .lines()
        .position(|l| l.starts_with("pipe "))
        .expect("a line for the channel");
    let header = out.lines().nth(pipe - 1).unwrap();
    assert!(
        header.starts_with("resource ") && header.contains("kind"),
        "{out}"
    );
}

#[test]
fn api_lists_the_starvation_key_and_the_scheduler_names() {
    let output = run_simcli(&["api"]);
    let text = String::from_utf8_lossy(&output.stdout);
    let machine = text
        .lines()
        .find(|l| l.starts_with("machine(settings: Map)"))
        .expect("machine(settings) in the api");
    for word in ["starvation", "\"cfs\"", "\"1.5ms\"", "bare 0"] {
        assert!(machine.contains(word), "{word}: {machine}");
    }
    assert!(
        !text.contains("compute(d: int)"),
        "the bare-0 overloads stay unlisted"
    );
}

#[test]
fn a_replay_and_a_seeded_run_never_overwrite_the_gallery_chart() {
    let out = scratch("newcomer-replay");
    let dir = out.to_str().unwrap();
    let explore = run_simcli(&[
        "explore",
        "scripts/race.rhai",
        "--runs",
        "200",
        "--quiet",
        "--out",
        dir,
    ]);
    assert_eq!(explore.status.code(), Some(1));
    let schedule = out.join("race-failure-1.ron");
    let replay = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--schedule",
        schedule.to_str().unwrap(),
        "--quiet",
        "--out",
        dir,
    ]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    let seeded = run_simcli(&[
        "run",
        "scripts/race.rhai",
        "--seed",
        "7",
        "--quiet",
        "--out",
        dir,
    ]);
    assert!(seeded.status.code().is_some());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "race-failure-1-1.png",
            "race-failure-1-2.png",
            "race-failure-1-3.png",
            "race-failure-1-replay-1.png",
            "race-failure-1-replay-2.png",
            "race-failure-1-replay-3.png",
            "race-failure-1.ron",
            "race-seed7-1.png",
            "race-seed7-2.png",
            "race-seed7-3.png",
        ]
    );
    // The replay draws the very run explore found.
    assert_eq!(
        std::fs::read(out.join("race-failure-1-1.png")).unwrap(),
        std::fs::read(out.join("race-failure-1-replay-1.png")).unwrap()
    );
}

#[test]
fn api_writes_rhai_definitions_for_editors() {
    let dir = scratch("newcomer-definitions");
    let output = run_simcli(&["api", "--definitions", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let ours = std::fs::read_to_string(dir.join("__static__.d.rhai")).expect("the static module");
    for needle in [
        "fn compute(",
        "fn machine(",
        "fn lock(",
        "A duration of `n` milliseconds.",
    ] {
        assert!(ours.contains(needle), "{needle}");
    }
    assert!(dir.join("__builtin__.d.rhai").exists());
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, needle) in [
        ("bash", "complete -F _simcli"),
        ("zsh", "#compdef simcli"),
        ("fish", "complete -c simcli"),
    ] {
        let output = run_simcli(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(needle), "{shell}: {needle}");
        assert!(text.contains("perfetto"), "{shell}: run's options");
    }
    assert_eq!(run_simcli(&["completions", "tcsh"]).status.code(), Some(2));
}

// ----- A second newcomer pass (issue 16's stop of 2026-12-07) ------------

#[test]
fn zero_cost_switches_are_still_counted_as_switches() {
    // Two 30ms threads alternating on one CPU every 10ms: a runs at 0,
    // 20 and 40ms, b at 10, 30 and 50ms. The textbook preset charges
    // nothing for a switch; the threads were switched to all the same.
    let source = "let m = machine(#{ preset: \"textbook\", cpus: 1, scheduler: \"rr\", quantum: ms(10) });\n\
                  m.add_thread(\"a\", || compute(ms(30)));\n\
                  m.add_thread(\"b\", || compute(ms(30)));\n\
                  let r = m.run();\n\
                  print(`${r.stats(\"a\").switches} ${r.stats(\"b\").switches} ${r.stats(\"a\").dispatches}`);\n";
    let (code, out, err) = simcli_on("free_switches", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // a's first dispatch is onto an idle CPU: no switch.
    assert!(out.contains("\n2 3 3\n"), "{out}");
    // With a charge, the same count (the kernel pays each of them).
    let paid = source.replace("preset: \"textbook\", ", "context_switch: us(5), ");
    let (code, out, err) = simcli_on("paid_switches", &paid, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\n2 3 3\n"), "{out}");
}

#[test]
fn a_stall_names_who_holds_the_lock_and_that_it_ended() {
    let source = "let m = machine(#{});\n\
                  let lock = m.mutex(\"lock\");\n\
                  m.add_thread(\"a\", || { lock.lock(); });\n\
                  m.add_thread(\"b\", || { sleep(ms(1)); lock.lock(); lock.unlock(); });\n";
    let (code, out, _) = simcli_on("stall_holder", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("b (mutex 'lock', held by a, which ended at 0s holding it)"),
        "{out}"
    );
}

#[test]
fn a_failed_expectation_shows_its_line_and_what_to_do() {
    let source = "let m = machine(#{});\n\
                  let c = m.variable(\"counter\", 0);\n\
                  m.add_thread(\"a\", || c.store(1));\n\
                  m.expect(\"counted\", |run| run.value(\"countr\") == 1);\n";
    let (code, out, _) = simcli_on("expect_typo", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "expectation 'counted': FAILED: error: the run has no variable named \"countr\"\n"
        ),
        "{out}"
    );
    assert!(out.contains("expect_typo.rhai:4:31\n"), "{out}");
    assert!(out.contains("help: its variables are: counter\n"), "{out}");
}

#[test]
fn a_guard_names_a_script_line_never_simcli_source() {
    let (code, out, err) = simcli_on(
        "guard_site",
        &std::fs::read_to_string(simcli_tests::workspace().join("scripts/asyncio_vs_threads.rhai"))
            .unwrap(),
        "run",
        &["--no-chart", "--max-memory", "20MiB"],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("--max-memory"), "{err}");
    assert!(!out.contains("sim-core/src"), "{out}");
    assert!(!err.contains("sim-core/src"), "{err}");
    assert!(err.contains("guard_site.rhai:"), "{err}");
}

#[test]
fn stats_finds_an_asyncio_task_by_name() {
    let source = "let m = machine(#{});\n\
                  let lp = m.add_event_loop(\"loop\");\n\
                  lp.add_task(\"ticker\", || { for i in 0..3 { await_sleep(ms(10)); } });\n\
                  let r = m.run();\n\
                  print(`ticker ends at ${r.stats(\"ticker\").end}`);\n\
                  r.stats(\"tickr\");\n";
    let (code, out, err) = simcli_on("task_stats", source, "run", &["--no-chart"]);
    assert!(out.contains("ticker ends at 30"), "{out}{err}");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("no thread or task named \"tickr\""), "{err}");
    assert!(
        err.contains("its threads and tasks are: loop, ticker"),
        "{err}"
    );
}

#[test]
fn check_and_run_warn_of_misspelled_functions_and_unread_settings() {
    let source = "let m = machine(#{});\n\
                  let lock = m.mutex(\"l\");\n\
                  let n = param(\"threads\", 2);\n\
                  m.add_thread(\"a\", || { slep(ms(2)); lock.lok(); });\n";
    let (code, out, err) = simcli_on("typos", source, "check", &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("typos.rhai:4:24: no function is named `slep` (did you mean `sleep`?)"),
        "{err}"
    );
    assert!(
        err.contains("typos.rhai:4:42: no function is named `lok` (did you mean `lock`?)"),
        "{err}"
    );
    let (_, _, err) = simcli_on("typos", source, "run", &["--no-chart", "--set", "thread=8"]);
    assert!(err.contains("no function is named `slep`"), "{err}");
    assert!(
        err.contains("warning: --set thread: the script reads no `thread`"),
        "{err}"
    );
    // A key the script reads, by param() or as a constant, is no warning.
    let (_, _, err) = simcli_on(
        "typos",
        source,
        "run",
        &["--no-chart", "--set", "threads=8"],
    );
    assert!(!err.contains("--set"), "{err}");
    let constant = "let m = machine(#{ cpus: cpus });\nm.add_thread(\"a\", || compute(ms(1)));\n";
    let (code, _, err) = simcli_on(
        "constant",
        constant,
        "run",
        &["--no-chart", "--set", "cpus=2"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn no_gallery_script_draws_a_warning() {
    let scripts = simcli_tests::rhai_files(&["scripts", "scripts/challenges", "scripts/bench"]);
    assert!(scripts.len() > 30, "{scripts:?}");
    for path in scripts {
        let output = run_simcli(&["check", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!err.contains("warning"), "{}: {err}", path.display());
    }
}

#[test]
fn a_thread_may_be_joined_twice_and_by_two_threads_as_in_cpython() {
    let source = "let m = machine(#{ cpus: 2 });\n\
                  m.add_thread(\"main\", || {\n\
                  \x20   let worker = start_thread(\"worker\", || { compute(ms(5)); 42 });\n\
                  \x20   let watcher = start_thread(\"watcher\", || worker.join());\n\
                  \x20   print(`main ${worker.join()} ${worker.join()} ${watcher.join()}`);\n\
                  \x20   let child = start_process(\"child\", || 7);\n\
                  \x20   print(`process ${child.join()} ${child.join()}`);\n\
                  });\n";
    let (code, out, err) = simcli_on("join_twice", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("main 42 42 42"), "{out}");
    // multiprocessing's Process.join too.
    assert!(out.contains("process 7 7"), "{out}");
}

#[test]
fn review_fixes_task_switches_tail_params_map_methods_and_semaphores() {
    // An asyncio task's row counts the task switches its loop paid for.
    let tasks = "let m = machine(#{ name: \"aio\" });\n\
                 let lp = m.add_event_loop(\"loop\");\n\
                 lp.add_task(\"t1\", || { for i in 0..3 { await_yield(); } });\n\
                 lp.add_task(\"t2\", || { for i in 0..3 { await_yield(); } });\n\
                 let r = m.run();\n\
                 print(`switches ${r.stats(\"t1\").switches}`);\n";
    let (code, out, err) = simcli_on("task_switches", tasks, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("switches 4\n"), "{out}");
    // A param read in a block's last place, or through is_def_var, is read.
    let tail = "fn threads() { param(\"threads\", 4) }\nprint(threads());\n\
                if is_def_var(\"fast\") { print(\"fast\"); }\n";
    let (_, out, err) = simcli_on(
        "tail_param",
        tail,
        "run",
        &["--no-chart", "--set", "threads=8", "--set", "fast=true"],
    );
    assert!(out.contains("8\nfast\n"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    // A closure kept under a key set by index is a method; an unknown name
    // is never matched with an operator.
    let map =
        "let m = #{}; m[\"run1\"] = || 5; print(m.run1());\nlet f = |x| x * 2;\nprint(x(1));\n";
    let (_, _, err) = simcli_on("map_method", map, "check", &[]);
    assert!(!err.contains("run1"), "{err}");
    assert!(err.contains("no function is named `x`: the call"), "{err}");
    // A semaphore's permits have no owner: a stall on one names nobody.
    let semaphore = "let m = machine(#{});\nlet s = m.semaphore(\"items\", 0);\n\
                     m.add_thread(\"producer\", || { s.release(); s.release(); });\n\
                     m.add_thread(\"consumer\", || { s.acquire(); s.acquire(); s.acquire(); });\n";
    let (code, out, _) = simcli_on("semaphore_stall", semaphore, "run", &["--no-chart"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("consumer (semaphore 'items')"), "{out}");
}

#[test]
fn run_warns_of_a_captured_array_changed_in_a_thread() {
    // The thread's closure has its own copy of `results`: the push is seen
    // nowhere outside it, and the array printed after the run is empty.
    let source = "let m = machine(#{});\nlet results = [];\n\
                  for i in 0..2 { m.add_thread(`t${i}`, || { results.push(i); }); }\n\
                  m.run();\nprint(results);\n";
    let (code, out, err) = simcli_on("captured_push", source, "run", &["--no-chart"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\n[]\n"), "{out}");
    assert!(
        err.contains(
            "captured_push.rhai:3:44: the closure calls push() on `results`, which it captured"
        ),
        "{err}"
    );
}
