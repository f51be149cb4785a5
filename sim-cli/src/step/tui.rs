//! The terminal front end of `simcli step` (ratatui over crossterm): draws
//! the [`Screen`] of where the game stands, reads keys, and prints the
//! last screen as plain text when it leaves the terminal.

use std::path::Path;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TuiLine, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::DefaultTerminal;

use super::screen::{Screen, Tone};
use super::{Game, Move};

/// Plays `game` in the terminal until the player quits. `notice` is shown
/// first; at the end, `s` saves the decisions to `save`.
pub fn play(game: &mut Game, notice: Option<String>, save: &Path) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = run(&mut terminal, game, notice, save);
    ratatui::restore();
    // What the run came to stays in the terminal's scrollback.
    print!("{}", game.screen().text());
    result
}

fn style(tone: Tone) -> Style {
    match tone {
        Tone::Plain | Tone::Choice => Style::default(),
        Tone::Title => Style::default().add_modifier(Modifier::BOLD),
        Tone::Source => Style::default()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        Tone::Good => Style::default()
            .fg(Color::Green)
            .add_modifier(Modifier::BOLD),
        Tone::Bad => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// The screen's lines with `selected` (an index among its choices)
/// highlighted, then the status line.
fn lines(screen: &Screen, selected: usize, status: &str, ended: bool) -> Vec<TuiLine<'static>> {
    let mut out: Vec<TuiLine<'static>> = screen
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let chosen = screen.choices > 0 && i == screen.first_choice + selected;
            TuiLine::from(
                line.0
                    .iter()
                    .map(|(text, tone)| {
                        let mut s = style(*tone);
                        if chosen {
                            s = s.add_modifier(Modifier::REVERSED);
                        }
                        Span::styled(text.clone(), s)
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    if ended {
        out.push(TuiLine::from("keys: s save the decisions, u undo, q quit"));
    }
    if !status.is_empty() {
        out.push(TuiLine::from(Span::styled(
            status.to_string(),
            style(Tone::Bad).remove_modifier(Modifier::BOLD),
        )));
    }
    out
}

fn run(
    terminal: &mut DefaultTerminal,
    game: &mut Game,
    notice: Option<String>,
    save: &Path,
) -> std::io::Result<()> {
    let mut status = notice.map(|n| format!("error: {n}")).unwrap_or_default();
    let mut selected = 0usize;
    // Rows scrolled up from the bottom (PageUp / PageDown): a screen
    // taller than the terminal shows its end, where the choices are.
    let mut up = 0usize;
    loop {
        let screen = game.screen();
        let ended = game.ended();
        selected = selected.min(screen.choices.saturating_sub(1));
        terminal.draw(|frame| {
            let area = frame.area();
            let paragraph =
                Paragraph::new(lines(&screen, selected, &status, ended)).wrap(Wrap { trim: false });
            let hidden = paragraph
                .line_count(area.width)
                .saturating_sub(usize::from(area.height));
            up = up.min(hidden);
            let top = u16::try_from(hidden - up).unwrap_or(u16::MAX);
            frame.render_widget(paragraph.scroll((top, 0)), area);
        })?;
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let played = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => Move::Quit,
            KeyCode::Char('a') => Move::Auto,
            KeyCode::Char('u') => Move::Undo,
            KeyCode::Char(c @ '0'..='9') => Move::Pick(c as usize - '0' as usize),
            KeyCode::Enter if screen.choices > 0 => Move::Pick(selected + 1),
            KeyCode::Up => {
                selected = selected.saturating_sub(1);
                continue;
            }
            KeyCode::Down => {
                selected += 1;
                continue;
            }
            KeyCode::PageUp => {
                up += 10;
                continue;
            }
            KeyCode::PageDown => {
                up = up.saturating_sub(10);
                continue;
            }
            KeyCode::Char('s') if ended => {
                status = match game.save(save) {
                    Ok(()) => format!(
                        "saved: {} (replay: simcli run {} --schedule {})",
                        save.display(),
                        game.name,
                        save.display()
                    ),
                    Err(error) => format!("error: {error}"),
                };
                continue;
            }
            _ => continue,
        };
        status.clear();
        match game.play(played) {
            Ok(true) => (selected, up) = (0, 0),
            Ok(false) => return Ok(()),
            Err(error) => status = format!("error: {error}"),
        }
    }
}
