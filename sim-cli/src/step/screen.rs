//! What `simcli step` shows, as a model built from a [`Stop`], rendered
//! as plain text (`--moves`) and, from the same lines, by the terminal
//! interface: both show the same content.

use std::fmt::Write as _;

use sim_core::analysis::race;
use sim_core::kernel::ChoicePoint;
use sim_core::script::ScriptOutcome;

use super::goal::Goal;
use super::session::{Pause, Stop};
use crate::report;

/// How a piece of a line is shown in the terminal (plain text ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Ordinary text.
    Plain,
    /// A heading.
    Title,
    /// A line of the script.
    Source,
    /// A numbered choice.
    Choice,
    /// Good news (the goal reached).
    Good,
    /// Bad news (a failure, an error).
    Bad,
}

/// One line of a screen: pieces of text, each with its tone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line(pub Vec<(String, Tone)>);

impl Line {
    fn plain(text: impl Into<String>) -> Line {
        Line(vec![(text.into(), Tone::Plain)])
    }

    fn toned(text: impl Into<String>, tone: Tone) -> Line {
        Line(vec![(text.into(), tone)])
    }

    /// The line's text.
    pub fn text(&self) -> String {
        self.0.iter().map(|(t, _)| t.as_str()).collect()
    }
}

/// A screen: a decision to take, or the end of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screen {
    /// Its lines.
    pub lines: Vec<Line>,
    /// How many choices it offers (0 at the end).
    pub choices: usize,
    /// Index into `lines` of the first choice.
    pub first_choice: usize,
}

impl Screen {
    /// The screen for where a session stopped. `source` is the script's
    /// text (for the lines threads are at).
    pub fn new(name: &str, source: &str, goal: Option<&Goal>, stop: &Stop) -> Screen {
        match stop {
            Stop::Paused(pause) => decision(name, source, goal, pause),
            Stop::Ended(outcome) => end(name, goal, outcome),
        }
    }

    /// The screen as plain text, one line each.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let _ = writeln!(out, "{}", line.text().trim_end());
        }
        out
    }
}

/// The line `line` (1-based) of `source`, trimmed.
fn source_line(source: &str, line: u32) -> Option<&str> {
    source
        .lines()
        .nth((line as usize).checked_sub(1)?)
        .map(str::trim)
}

fn decision(name: &str, source: &str, goal: Option<&Goal>, pause: &Pause) -> Screen {
    let s = &pause.snapshot;
    let machine = pause
        .machine
        .as_ref()
        .map_or(String::new(), |m| format!(", machine '{m}'"));
    let mut lines = vec![Line::toned(
        format!(
            "== {name}: decision {} at {}{machine} ==",
            pause.index + 1,
            s.time
        ),
        Tone::Title,
    )];
    if let Some(goal) = goal {
        lines.push(Line::plain(format!("goal: {}", goal.text)));
    }
    lines.push(Line::toned("threads:", Tone::Title));
    let width = s.threads.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let state_width = s.threads.iter().map(|t| t.state.len()).max().unwrap_or(0);
    for (i, t) in s.threads.iter().enumerate() {
        let cpu = t.cpu.map_or(String::new(), |c| format!("cpu {c}"));
        let mut line = Line::plain(format!(
            "  {:width$}  {:state_width$}  {cpu:5}  ",
            t.name, t.state
        ));
        // A thread that will call an operation when it next runs shows
        // that one; a thread inside one (blocked, or computing) shows it.
        let upcoming = !t.busy && (t.state == "ready" || t.state == "running");
        let next = pause.next.get(i).copied().flatten().filter(|_| upcoming);
        let shown = match (next, t.at()) {
            _ if t.state == "done" => None,
            (Some(at), _) => Some(("next", at)),
            (None, Some(at)) if upcoming => Some(("after", at)),
            (None, Some(at)) => Some(("in", at)),
            (None, None) => None,
        };
        match shown {
            Some((word, (at, _))) => {
                line.0.push((format!("{word} line {at}: "), Tone::Plain));
                line.0.push((
                    source_line(source, at).unwrap_or("").to_string(),
                    Tone::Source,
                ));
            }
            None if t.operations == 0 => line.0.push(("(not started)".to_string(), Tone::Plain)),
            None => {}
        }
        lines.push(line);
    }
    if !s.variables.is_empty() {
        lines.push(Line::toned("variables:", Tone::Title));
        for v in &s.variables {
            lines.push(Line::plain(format!("  {} = {}", v.name, v.value)));
        }
    }
    if !s.locks.is_empty() {
        lines.push(Line::toned("locks:", Tone::Title));
        for lock in &s.locks {
            let names = |ids: &[sim_core::ThreadId]| {
                ids.iter()
                    .map(|&id| s.thread_name(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let held = match (lock.permits, lock.holders.is_empty()) {
                (Some(permits), _) => format!("{permits} permit(s) free"),
                (None, true) => "free".to_string(),
                (None, false) => format!("held by {}", names(&lock.holders)),
            };
            let waiting = if lock.waiters.is_empty() {
                String::new()
            } else {
                format!(", waiting: {}", names(&lock.waiters))
            };
            lines.push(Line::plain(format!(
                "  {} ({}): {held}{waiting}",
                lock.name, lock.kind
            )));
        }
    }
    let (question, choices) = describe(pause);
    lines.push(Line::toned(format!("choose: {question}"), Tone::Title));
    let first_choice = lines.len();
    for (i, choice) in choices.iter().enumerate() {
        lines.push(Line::toned(format!("  {}) {choice}", i + 1), Tone::Choice));
    }
    lines.push(Line::plain(
        "keys: 1-9 or arrows + Enter pick, a auto, u undo, q quit (PageUp/PageDown scroll)",
    ));
    Screen {
        lines,
        choices: choices.len(),
        first_choice,
    }
}

/// The question a pause asks and its options, in words.
fn describe(pause: &Pause) -> (String, Vec<String>) {
    let s = &pause.snapshot;
    let name = |i: usize| pause.threads.get(i).map(|&id| s.thread_name(id));
    let state = |i: usize| {
        pause
            .threads
            .get(i)
            .and_then(|&id| s.threads.iter().find(|t| t.id == id))
            .map_or("?", |t| t.state.as_str())
    };
    let each = |f: &dyn Fn(usize) -> String| (0..pause.options).map(f).collect::<Vec<_>>();
    match pause.point {
        ChoicePoint::Preempt => {
            let (running, head) = (name(0).unwrap_or("?"), name(1).unwrap_or("?"));
            (
                format!(
                    "{running} has just done a zero-time operation and {head} is ready: \
                     does {running} keep its CPU?"
                ),
                vec![
                    format!("{running} goes on"),
                    format!("preempt {running} ({head} is next in the ready queue)"),
                ],
            )
        }
        ChoicePoint::Dispatch => (
            "a free CPU takes a ready thread: which one?".to_string(),
            each(&|i| format!("run {}", name(i).unwrap_or("?"))),
        ),
        ChoicePoint::Waiter => (
            "a resource is released to several waiters: which one gets it?".to_string(),
            each(&|i| match name(i) {
                Some(n) => format!("{n} (waiting for {})", state(i)),
                None => format!("waiter {}", i + 1),
            }),
        ),
        ChoicePoint::SameInstant => (
            format!("several things happen at {}: which comes first?", s.time),
            each(&|i| match name(i) {
                Some(n) if pause.threads.len() == pause.options => match state(i) {
                    "running" | "switch" | "spawn" => format!("{n} takes its next step"),
                    "sleep" => format!("{n} wakes up"),
                    device if device.starts_with("device ") => {
                        format!("the I/O of {n} on {device}")
                    }
                    other => format!("the event of {n} ({other})"),
                },
                _ => format!("event {}", i + 1),
            }),
        ),
        ChoicePoint::Jitter => (
            "how much longer or shorter is this duration?".to_string(),
            each(&|i| format!("option {i}")),
        ),
    }
}

fn end(name: &str, goal: Option<&Goal>, outcome: &ScriptOutcome) -> Screen {
    let decisions = outcome.schedule().len();
    let at = outcome
        .runs
        .last()
        .map_or(String::new(), |r| format!(" at {}", r.trace.end));
    let mut lines = vec![Line::toned(
        format!("== {name}: the run ended{at}, after {decisions} decision(s) =="),
        Tone::Title,
    )];
    for run in &outcome.runs {
        let tone = if run.outcome_failure().is_some() || run.outcome_error().is_some() {
            Tone::Bad
        } else {
            Tone::Plain
        };
        for (i, text) in report::describe_outcome(run).lines().enumerate() {
            let text = if i == 0 {
                format!("{}: {text}", run.label)
            } else {
                text.to_string()
            };
            lines.push(Line::toned(text, tone));
        }
        for r in &run.trace.races {
            lines.push(Line::toned(race::explain(r, &run.trace), Tone::Bad));
        }
        for e in run.expectations() {
            let (verdict, tone) = if e.held {
                ("held", Tone::Plain)
            } else {
                ("FAILED", Tone::Bad)
            };
            lines.push(Line::toned(
                format!("expectation '{}': {verdict}", e.name),
                tone,
            ));
        }
        match (run.outcome_failure(), run.expected_outcome) {
            (Some(failure), _) => lines.push(Line::toned(format!("FAILED: {failure}"), Tone::Bad)),
            (None, Some(expected)) => lines.push(Line::plain(format!(
                "expected outcome '{}': as declared",
                expected.name()
            ))),
            (None, None) => {}
        }
        let values: Vec<String> = run
            .trace
            .variables
            .iter()
            .map(|v| format!("{} = {}", v.name, v.value))
            .collect();
        if !values.is_empty() {
            lines.push(Line::plain(format!("variables: {}", values.join(", "))));
        }
    }
    if let Some(error) = &outcome.error {
        for text in error.to_string().lines() {
            lines.push(Line::toned(text.to_string(), Tone::Bad));
        }
    }
    if let Some(goal) = goal {
        lines.push(if goal.reached(outcome) {
            Line::toned(format!("goal reached: {}", goal.text), Tone::Good)
        } else {
            Line::toned(
                format!("goal not reached: {} (u to undo)", goal.text),
                Tone::Bad,
            )
        });
    }
    Screen {
        lines,
        choices: 0,
        first_choice: 0,
    }
}

#[cfg(test)]
mod tests {
    use sim_core::kernel::{LockSnapshot, Snapshot, ThreadSnapshot, VariableSnapshot};
    use sim_core::{ms, ThreadId, Time};

    use super::*;

    fn thread(id: u32, name: &str, state: &str, at: Option<(u32, u32)>) -> ThreadSnapshot {
        ThreadSnapshot {
            id: ThreadId(id),
            name: name.into(),
            state: state.into(),
            cpu: (state == "running").then_some(0),
            recent: vec![at],
            operations: 1,
            busy: false,
        }
    }

    #[test]
    fn a_waiter_decision_shows_threads_lines_variables_locks_and_choices() {
        let source = "let m = machine();\nm.lock();\nx.store(1);\n";
        let pause = Pause {
            index: 4,
            point: ChoicePoint::Waiter,
            options: 2,
            threads: vec![ThreadId(1), ThreadId(2)],
            snapshot: Snapshot {
                time: Time::ZERO + ms(3),
                threads: vec![
                    thread(0, "a", "running", Some((3, 1))),
                    thread(1, "b", "mutex 'm'", Some((2, 1))),
                    thread(2, "c", "mutex 'm'", Some((2, 1))),
                ],
                variables: vec![VariableSnapshot {
                    name: "x".into(),
                    value: 1,
                }],
                locks: vec![LockSnapshot {
                    name: "m".into(),
                    kind: "mutex",
                    holders: vec![],
                    waiters: vec![ThreadId(1), ThreadId(2)],
                    permits: None,
                }],
            },
            machine: Some("second".into()),
            next: vec![None, None, None],
        };
        let goal = Goal {
            text: "win".into(),
            reach: super::super::goal::Reach::Deadlock,
        };
        let screen = Screen::new("s.rhai", source, Some(&goal), &Stop::Paused(pause));
        assert_eq!(
            screen.text(),
            "== s.rhai: decision 5 at 3ms, machine 'second' ==\n\
             goal: win\n\
             threads:\n  \
               a  running    cpu 0  after line 3: x.store(1);\n  \
               b  mutex 'm'         in line 2: m.lock();\n  \
               c  mutex 'm'         in line 2: m.lock();\n\
             variables:\n  \
               x = 1\n\
             locks:\n  \
               m (mutex): free, waiting: b, c\n\
             choose: a resource is released to several waiters: which one gets it?\n  \
               1) b (waiting for mutex 'm')\n  \
               2) c (waiting for mutex 'm')\n\
             keys: 1-9 or arrows + Enter pick, a auto, u undo, q quit (PageUp/PageDown scroll)\n"
        );
        assert_eq!((screen.choices, screen.first_choice), (2, 11));
        // The highlighted script line is its own piece, for the terminal.
        assert!(screen.lines[3]
            .0
            .contains(&("x.store(1);".to_string(), Tone::Source)));
    }
}
