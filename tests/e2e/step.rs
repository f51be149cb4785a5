//! `simcli step`: the player takes the decisions. `--moves` end to end on
//! the challenges (goals reached, schedules that replay with `run`, undo,
//! bad input), and the terminal interface driven in a pseudo-terminal.

use simcli_tests::{run_simcli, scratch, simcli, workspace};

const LOST_WAKEUP: &str = "scripts/challenges/5_lost_wakeup.rhai";

/// A sequence of moves that reaches each challenge's goal.
const WINS: [(&str, &str); 5] = [
    ("1_critical_section", "1,2,1,1,2,a,a,a"),
    ("2_philosophers", "1,2,1,2,1,a"),
    ("3_lost_update", "1,2,1,2,1,1,1"),
    ("4_overdraft", "1,2,a"),
    ("5_lost_wakeup", "1,2,a"),
];

/// Runs `simcli step SCRIPT ARGS...`: exit code, stdout, stderr.
fn step(script: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["step", script];
    all.extend_from_slice(args);
    let output = run_simcli(&all);
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
    )
}

/// The screens of a `--moves` transcript: the text before each `> move`
/// line, and after the last.
fn screens(text: &str) -> Vec<String> {
    let mut screens = vec![String::new()];
    for line in text.lines() {
        if line.starts_with("> ") {
            screens.push(String::new());
        } else if !line.starts_with("error: ") && !line.is_empty() {
            let last = screens.last_mut().expect("one screen at least");
            last.push_str(line);
            last.push('\n');
        }
    }
    screens
}

#[test]
fn every_challenge_has_a_goal_that_the_default_schedule_misses_and_moves_reach() {
    for (name, moves) in WINS {
        let script = format!("scripts/challenges/{name}.rhai");
        let text = std::fs::read_to_string(workspace().join(&script)).unwrap();
        assert!(text.contains("\n// goal: "), "{script}: no goal line");
        assert!(text.contains("\n// reach: "), "{script}: no reach line");
        // The default scheduler does not reach the goal: `run` passes.
        let run = run_simcli(&["run", &script, "--no-chart", "--quiet"]);
        assert_eq!(run.status.code(), Some(0), "{script}");
        let dir = scratch(&format!("step-{name}"));
        let file = dir.join("won.ron");
        let file = file.to_str().unwrap();
        let (code, out, err) = step(&script, &["--moves", moves, "--save", file]);
        assert!(out.contains("goal reached: "), "{script}: {out}{err}");
        assert_eq!(code, Some(0), "{script}: {out}{err}");
        // The saved decisions replay to the same ending under `run`,
        // which counts it a failure.
        let ending = out
            .lines()
            .find_map(|l| l.strip_prefix("machine 1: "))
            .expect("the end screen's outcome");
        let replay = run_simcli(&["run", &script, "--schedule", file, "--no-chart"]);
        let report = String::from_utf8(replay.stdout).unwrap();
        assert!(
            report.contains(&format!("outcome: {ending}\n")),
            "{script}: {report}"
        );
        assert_eq!(replay.status.code(), Some(1), "{script}: {report}");
    }
}

#[test]
fn a_known_sequence_loses_the_wakeup_and_shows_the_screens() {
    let (code, out, _) = step(LOST_WAKEUP, &["--moves", "1,2,a"]);
    assert_eq!(code, Some(0), "{out}");
    let screens = screens(&out);
    assert_eq!(screens.len(), 4, "{out}");
    // The second decision: consumer has loaded the flag (0) and locks
    // next; the producer is ready and has not started: it stores first.
    let second = &screens[1];
    assert!(second.starts_with(&format!("== {LOST_WAKEUP}: decision 2 at 0s ==\n")));
    assert!(second.contains("goal: make the consumer sleep forever\n"));
    assert!(second.contains("  consumer  running  cpu 0  next line 18: lock.lock();\n"));
    assert!(second.contains("  producer  ready           next line 26: ready.store(1);\n"));
    assert!(second.contains("  ready = 0\n"));
    assert!(second.contains("  lock (mutex): free\n"));
    assert!(second.contains("  2) preempt consumer (producer is next in the ready queue)\n"));
    let end = &screens[3];
    assert!(
        end.contains(
            "stalled: unfinished threads and nothing left to wake them: consumer (condvar 'cv')"
        ),
        "{end}"
    );
    assert!(
        end.ends_with("goal reached: make the consumer sleep forever\n"),
        "{end}"
    );
    // Deterministic: the same moves print the same bytes.
    assert_eq!(step(LOST_WAKEUP, &["--moves", "1,2,a"]).1, out);
}

#[test]
fn a_saved_schedule_replays_to_the_same_failure() {
    let dir = scratch("step-save");
    let file = dir.join("wakeup.ron");
    let file = file.to_str().unwrap();
    let (code, out, err) = step(LOST_WAKEUP, &["--moves", "1,2,a", "--save", file]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!(
        "schedule: {file} (replay: simcli run {LOST_WAKEUP} --schedule {file})"
    )));
    let replay = || {
        run_simcli(&[
            "run",
            LOST_WAKEUP,
            "--schedule",
            file,
            "--out",
            dir.to_str().unwrap(),
        ])
    };
    let (first, second) = (replay(), replay());
    assert_eq!(first.stdout, second.stdout);
    // The stall is not declared: `run` says it failed.
    assert_eq!(first.status.code(), Some(1));
    let report = String::from_utf8(first.stdout).unwrap();
    let outcome =
        "stalled: unfinished threads and nothing left to wake them: consumer (condvar 'cv')";
    assert!(report.contains(&format!("outcome: {outcome}")), "{report}");
    assert!(out.contains(outcome));
    assert!(dir.join("wakeup-replay.png").exists());
    // The file starts a new game at the end of the run, and undo walks
    // back through it one decision at a time.
    let (code, again, _) = step(LOST_WAKEUP, &["--schedule", file, "--moves", "u,u"]);
    let screens = screens(&again);
    assert!(screens[0].contains("goal reached"), "{again}");
    assert!(
        screens[1].starts_with(&format!("== {LOST_WAKEUP}: decision 6 at ")),
        "{again}"
    );
    assert!(
        screens[2].starts_with(&format!("== {LOST_WAKEUP}: decision 5 at ")),
        "{again}"
    );
    assert_eq!(code, Some(1), "{again}");
}

#[test]
fn undo_returns_to_the_same_screen() {
    let (_, out, _) = step(LOST_WAKEUP, &["--moves", "1,2,u,u,u"]);
    let screens = screens(&out);
    // Screens: d1, d2, d3, (u) d2, (u) d1, (u) d1 with an error.
    assert_eq!(screens.len(), 6, "{out}");
    assert_eq!(screens[3], screens[1]);
    assert_eq!(screens[4], screens[0]);
    assert_eq!(screens[5], screens[0]);
    assert!(out.contains("error: nothing to undo: this is the first decision"));
    // Undo at the end returns to the last decision.
    let (_, out, _) = step(LOST_WAKEUP, &["--moves", "1,2,a,u"]);
    let after = self::screens(&out);
    assert_eq!(after[4], after[2], "{out}");
}

#[test]
fn bad_moves_get_a_clear_message_and_the_game_goes_on() {
    let (code, out, _) = step(LOST_WAKEUP, &["--moves", "1,9,0,2,a"]);
    assert!(
        out.contains("> 9\nerror: there is no choice 9: pick 1 to 2\n"),
        "{out}"
    );
    assert!(
        out.contains("> 0\nerror: there is no choice 0: pick 1 to 2\n"),
        "{out}"
    );
    assert!(out.contains("goal reached"), "{out}");
    assert_eq!(code, Some(0));
    // Moves that end before the run: a note says so (the screens stay as
    // they are on stdout).
    let (_, _, err) = step(LOST_WAKEUP, &["--moves", "1"]);
    assert!(
        err.contains("the moves ran out before the run's end"),
        "{err}"
    );
    let (_, _, err) = step(LOST_WAKEUP, &["--moves", "1,2,a"]);
    assert!(!err.contains("ran out"), "{err}");
    // A word that is no move is a usage error before anything runs.
    let (code, _, err) = step(LOST_WAKEUP, &["--moves", "1,x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("'x' is not a move"), "{err}");
}

#[test]
fn a_schedule_of_another_script_is_refused_and_the_game_goes_on() {
    let dir = scratch("step-other");
    let file = dir.join("philosophers.ron");
    let file = file.to_str().unwrap();
    let (code, _, _) = step(
        "scripts/challenges/2_philosophers.rhai",
        &["--moves", "1,2,1,2,1,a", "--save", file],
    );
    assert_eq!(code, Some(0));
    let (code, out, _) = step(LOST_WAKEUP, &["--schedule", file, "--moves", "1,2,a"]);
    assert!(
        out.starts_with(&format!(
            "error: {file} does not fit this script (decision "
        )),
        "{out}"
    );
    assert!(out.contains("starting from the first decision\n"), "{out}");
    assert!(out.contains("goal reached"), "{out}");
    assert_eq!(code, Some(0));
    // A schedule that is not there: a usage error naming it.
    let (code, _, err) = step(LOST_WAKEUP, &["--schedule", "no/such.ron", "--moves", "1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no/such.ron"), "{err}");
}

#[test]
fn the_exit_status_says_whether_the_goal_or_the_run_went_well() {
    // A challenge left before its goal: 1.
    let (code, out, _) = step(LOST_WAKEUP, &["--moves", "1,q,2"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.ends_with("> q\n"), "{out}");
    // Another script: as `run` exits. A declared deadlock is no failure.
    let (code, out, _) = step("scripts/deadlock.rhai", &["--moves", "a,a,a,a,a,a"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("expected outcome 'deadlock': as declared\n"),
        "{out}"
    );
    // A broken expectation is.
    let (code, out, _) = step("scripts/check_then_act.rhai", &["--moves", "a,a,a,a,a,a"]);
    assert!(out.contains("': FAILED\n"), "{out}");
    assert_eq!(code, Some(1), "{out}");
}

#[test]
fn without_a_terminal_or_moves_it_says_what_to_do() {
    let (code, _, err) = step(LOST_WAKEUP, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--moves"), "{err}");
}

/// Types `keys` into the pseudo-terminal.
fn key(p: &mut rexpect::session::PtySession, keys: &str) {
    p.send(keys).expect("the terminal takes keys");
    p.flush().expect("the keys reach the program");
}

#[test]
fn the_terminal_interface_plays_a_challenge_in_a_pseudo_terminal() {
    let dir = scratch("step-tui");
    // A pseudo-terminal starts with no size: give it one, then start.
    let command = format!(
        "stty rows 40 cols 120; exec {} step {LOST_WAKEUP} --out {}",
        simcli().display(),
        dir.display()
    );
    let mut shell = std::process::Command::new("sh");
    shell.args(["-c", &command]).current_dir(workspace());
    let mut p = rexpect::session::spawn_command(shell, Some(20_000)).expect("spawns");
    // The terminal is redrawn by differences, unstyled spaces skipped:
    // look for what each move brings that is written in one piece (the
    // highlighted script line, a bold title).
    p.exp_string("decision 1").expect("the first screen");
    key(&mut p, "1");
    p.exp_string("lock.lock();")
        .expect("the consumer has loaded the flag and locks next");
    // Arrows and Enter: down to option 2, the preemption (without it, `a`
    // does not reach the goal).
    key(&mut p, "\x1b[B");
    key(&mut p, "\r");
    key(&mut p, "a");
    p.exp_string("goal reached").expect("the goal");
    key(&mut p, "s");
    p.exp_string("saved:").expect("saved");
    key(&mut p, "q");
    p.exp_eof().expect("it ends");
    let saved = dir.join("5_lost_wakeup-step.ron");
    assert!(saved.exists(), "{}", saved.display());
}
