//! `simcli step`: the player is the scheduler.
//!
//! At every decision with more than one legal option the run pauses and
//! shows the clock, the threads (state, CPU, the script line of their last
//! operation), the shared variables, the locks and the options; the player
//! picks one, lets the default chooser go on (`a`), undoes (`u`) or quits
//! (`q`). At the end it shows the outcome and, for a challenge, whether
//! its goal was reached; the decisions made are a schedule that `simcli
//! run SCRIPT --schedule FILE` replays.
//!
//! ```text
//!  keys / --moves ──► Session ──(replays the decisions, stops at the next)──► Stop
//!                        ▲                                                    │
//!                        └──────── tui (ratatui) / text ◄── Screen ◄──────────┘
//! ```
//!
//! - `session`: the replay-to-decision engine, with no terminal in it.
//! - `screen`: the model of a screen and its plain-text rendering.
//! - `goal`: a challenge's goal, from its header.
//! - `tui`: the terminal front end.

mod goal;
mod screen;
mod session;
mod tui;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sim_core::kernel::Decision;
use sim_core::script::RunOptions;

pub use goal::Goal;
pub use screen::Screen;
pub use session::{MoveError, Session, Stop};

use crate::args::StepArgs;
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// One move of `--moves` (or one key of the terminal interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// Option n, counted from 1 as shown.
    Pick(usize),
    /// Let the default chooser go on to the next decision that matters.
    Auto,
    /// Undo the last move.
    Undo,
    /// Stop.
    Quit,
}

impl Move {
    /// Reads one move: a number from 1, `a`, `u` or `q`.
    pub fn parse(text: &str) -> Result<Move, String> {
        match text.trim() {
            "a" => Ok(Move::Auto),
            "u" => Ok(Move::Undo),
            "q" => Ok(Move::Quit),
            n => n.parse::<usize>().map(Move::Pick).map_err(|_| {
                format!(
                    "'{n}' is not a move: a choice number (from 1), a (auto), u (undo) or q (quit)"
                )
            }),
        }
    }
}

/// A session with what its screens need: the script's name, text and goal.
#[derive(Debug)]
pub struct Game {
    /// The session.
    pub session: Session,
    /// The script's name, as given.
    pub name: String,
    /// The script's text.
    pub source: String,
    /// Its goal, for a challenge.
    pub goal: Option<Goal>,
}

impl Game {
    /// The screen of where the session stands.
    pub fn screen(&self) -> Screen {
        Screen::new(
            &self.name,
            &self.source,
            self.goal.as_ref(),
            self.session.stop(),
        )
    }

    /// Makes a move; `Ok(false)` for quit.
    pub fn play(&mut self, played: Move) -> Result<bool, MoveError> {
        match played {
            Move::Pick(0) => Err(match self.session.stop() {
                Stop::Paused(pause) => MoveError::OutOfRange {
                    given: 0,
                    options: pause.options,
                },
                Stop::Ended(_) => MoveError::Ended,
            }),
            Move::Pick(n) => self.session.pick(n - 1).map(|()| true),
            Move::Auto => self.session.auto().map(|()| true),
            Move::Undo => self.session.undo().map(|()| true),
            Move::Quit => Ok(false),
        }
    }

    /// Whether the run has ended.
    pub fn ended(&self) -> bool {
        matches!(self.session.stop(), Stop::Ended(_))
    }

    /// The exit status the session ends with: for a challenge, 0 when its
    /// goal was reached and 1 otherwise; for another script, 1 when the run
    /// ended in a failure (as `simcli run` would exit) and 0 otherwise.
    pub fn status(&self) -> ExitCode {
        let failed = match (self.session.stop(), &self.goal) {
            (Stop::Ended(outcome), Some(goal)) => !goal.reached(outcome),
            (Stop::Paused(_), Some(_)) => true,
            (Stop::Ended(outcome), None) => {
                outcome.error.is_some()
                    || outcome
                        .runs
                        .iter()
                        .any(|r| r.expectation_failed() || r.outcome_failure().is_some())
            }
            (Stop::Paused(_), None) => false,
        };
        if failed {
            ExitCode::from(EXIT_FAILURE)
        } else {
            ExitCode::SUCCESS
        }
    }

    /// Writes the decisions made so far to `path` (the whole schedule once
    /// the run has ended; a prefix replays like a schedule too, the
    /// default chooser taking the rest).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_schedule(path, self.session.decisions())
    }
}

fn write_schedule(path: &Path, decisions: &[Decision]) -> Result<(), String> {
    let text = ron::to_string(decisions).expect("decisions serialize");
    sim_core::output::write(path, text.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs `simcli step`.
pub fn step(args: &StepArgs) -> ExitCode {
    let script = match crate::load_script(&args.script) {
        Ok(script) => script,
        Err(status) => return status,
    };
    let source = std::fs::read_to_string(&args.script).expect("read above");
    let goal = match Goal::from_source(&source) {
        Ok(goal) => goal,
        Err(error) => {
            eprintln!("error: {}: {error}", args.script.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let moves = match args.moves.as_deref().map(parse_moves).transpose() {
        Ok(moves) => moves,
        Err(error) => {
            eprintln!("error: --moves: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if moves.is_none() && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!(
            "error: simcli step is played in a terminal; without one, give the moves with \
             --moves (e.g. --moves 2,1,a)"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let schedule = match args.schedule.as_deref().map(crate::run::read_schedule) {
        Some(Ok(schedule)) => Some(schedule),
        Some(Err(error)) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
        None => None,
    };
    let options = RunOptions {
        out_dir: args.out.clone(),
        constants: args.set.clone(),
        ..RunOptions::default()
    };
    let name = args.script.display().to_string();
    let mut game = Game {
        session: Session::new(script, options),
        name,
        source,
        goal,
    };
    let mut notice = None;
    if let (Some(schedule), Some(path)) = (schedule, &args.schedule) {
        if let Err(error) = game.session.replay(schedule) {
            notice = Some(format!(
                "{} does not fit this script ({error}); starting from the first decision",
                path.display()
            ));
        }
    }
    let save = args.save.clone();
    let status = match moves {
        Some(moves) => play_moves(&mut game, &moves, notice),
        None => match tui::play(&mut game, notice, &save_path(args)) {
            Ok(()) => game.status(),
            Err(error) => {
                eprintln!("error: the terminal: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    if let Some(path) = save {
        if let Err(error) = game.save(&path) {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
        println!(
            "schedule: {} (replay: simcli run {} --schedule {})",
            path.display(),
            args.script.display(),
            path.display()
        );
    }
    status
}

/// Where the terminal interface saves the decisions: `--save`, else
/// `OUT/<script>-step.ron`.
fn save_path(args: &StepArgs) -> PathBuf {
    args.save.clone().unwrap_or_else(|| {
        let stem = args
            .script
            .file_stem()
            .map_or("step".into(), |s| s.to_string_lossy().into_owned());
        args.out.join(format!("{stem}-step.ron"))
    })
}

/// Reads `--moves`: moves separated by commas.
fn parse_moves(text: &str) -> Result<Vec<Move>, String> {
    text.split(',')
        .filter(|m| !m.trim().is_empty())
        .map(Move::parse)
        .collect()
}

/// Plays `moves` without a terminal, printing each screen and each move:
/// a move that cannot be made prints why and the game goes on; moves that
/// end before the run does say so on stderr.
fn play_moves(game: &mut Game, moves: &[Move], notice: Option<String>) -> ExitCode {
    if let Some(notice) = notice {
        println!("error: {notice}");
    }
    for &played in moves {
        print!("{}", game.screen().text());
        println!("> {}", show(played));
        match game.play(played) {
            Ok(true) => {}
            Ok(false) => return game.status(),
            Err(error) => println!("error: {error}"),
        }
        println!();
    }
    print!("{}", game.screen().text());
    if !game.ended() {
        // The exit status below is that of a run left before its end.
        eprintln!(
            "note: the moves ran out before the run's end: add moves, or end them with a (auto) to play the rest"
        );
    }
    game.status()
}

/// A move as `--moves` spells it.
fn show(played: Move) -> String {
    match played {
        Move::Pick(n) => n.to_string(),
        Move::Auto => "a".into(),
        Move::Undo => "u".into(),
        Move::Quit => "q".into(),
    }
}
