//! A fuzz harness for hostile and careless scripts (issue 18): it generates
//! scripts from a small grammar of the script API (with the loops, spawns,
//! arrays and recursion that exhaust a host) and by mangling the scripts in
//! `scripts/`, runs each with the real `simcli` under a wall-clock and a
//! memory cap, and counts how each ended.
//!
//! ```text
//!   seed ──► generate / mutate ──► FILE.rhai ──► simcli run|explore ──► Tally
//!                                                 (20 s, 2 GiB RSS cap)
//! ```
//!
//! `cargo test -p simcli-tests --test e2e fuzz` runs a short seeded slice;
//! the long run is `cargo run --release -p simcli-tests --bin fuzz -- --scripts 10000`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so a seed names a corpus.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Numbers that find edges.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "10",
    "-1",
    "1000",
    "100000",
    "1000000",
    "2000000",
    "9223372036854775807",
    "-9223372036854775808",
    "0.5",
    "1e300",
];

/// Statements a body may run: ordinary ones and the hostile ones of issue 18.
const BODY: &[&str] = &[
    "compute(ms(1));",
    "compute(us(N));",
    "sleep(ms(N));",
    "yield_now();",
    "print(now());",
    "v.store(v.load() + 1);",
    "v.fetch_add(1);",
    "lk.lock(); v.store(v.load() + 1); lk.unlock();",
    "lk.unlock();",
    "lk.lock();",
    "sem.acquire(); compute(us(5)); sem.release();",
    "sem.release();",
    "ch.send(N);",
    "ch.recv();",
    "cv.notify_all();",
    "let h = start_thread(\"c\", || { compute(us(N)); N }); h.join();",
    "start_thread(\"c\", || sleep(ms(N)));",
    "for i in 0..N { compute(ns(1)); }",
    "loop { yield_now(); }",
    "loop { }",
    "while true { v.load(); }",
    "loop { start_thread(\"c\", || sleep(sec(10))); }",
    "let z = []; z.pad(N, 1);",
    "let z = []; z.pad(1000000, 1); compute(ns(1));",
    "loop { let z = []; z.pad(1000000, 1); compute(ns(1)); }",
    "loop { a.push(1); compute(ns(1)); }",
    "f(N);",
    "g(N);",
    "let s = \"x\"; for i in 0..N { s += s; }",
    "throw \"boom\";",
    "let x = 1 / 0;",
    "let x = [1, 2][N];",
    "undefined_call(N);",
    "`${}`;",
    "compute(N);",
    "sleep(-1);",
    "return N;",
];

/// Machine keys and values, sane and not.
const MACHINE: &[&str] = &[
    "cpus: N",
    "scheduler: \"fifo\"",
    "scheduler: \"priority\"",
    "scheduler: \"fair\"",
    "scheduler: \"nope\"",
    "quantum: us(N)",
    "max_time: sec(N)",
    "max_events: N",
    "max_steps_at_instant: N",
    "max_threads: N",
    "stack_size: N",
    "stack_size: 16384",
    "memory: \"1MiB\"",
    "seed: N",
    "preset: \"linux\"",
    "preset: \"textbook\"",
];

fn number(rng: &mut Rng) -> String {
    if rng.chance(60) {
        (rng.below(20) + 1).to_string()
    } else {
        rng.pick(NUMBERS).to_string()
    }
}

fn fill(rng: &mut Rng, template: &str) -> String {
    let mut out = String::new();
    for (i, part) in template.split('N').enumerate() {
        if i > 0 {
            out.push_str(&number(rng));
        }
        out.push_str(part);
    }
    out
}

/// A script from the grammar. `quick` keeps the limits small, so that a
/// hostile script ends in well under a second even in a debug build.
pub fn generate(rng: &mut Rng, quick: bool) -> String {
    let mut keys: Vec<String> = Vec::new();
    for _ in 0..rng.below(4) {
        let key = *rng.pick(MACHINE);
        keys.push(fill(rng, key));
    }
    if quick {
        keys.retain(|k| !k.starts_with("max_") && !k.starts_with("stack"));
        keys.push("max_events: 20000".into());
        keys.push("max_steps_at_instant: 5000".into());
        keys.push("max_threads: 200".into());
    }
    let mut s = String::new();
    s.push_str("fn f(n) { if n <= 0 { 0 } else { start_thread(\"t\", || f(n - 1)).join() } }\n");
    s.push_str("fn g(n) { if n <= 0 { 0 } else { 1 + g(n - 1) } }\n");
    s.push_str(&format!("let m = machine(#{{ {} }});\n", keys.join(", ")));
    s.push_str("let v = m.variable(\"v\", 0);\nlet lk = m.mutex(\"lk\");\n");
    s.push_str(&fill(rng, "let sem = m.semaphore(\"sem\", N);\n"));
    s.push_str(&fill(rng, "let ch = m.channel(\"ch\", N);\n"));
    s.push_str("let cv = m.condvar(\"cv\");\nlet a = [];\n");
    for t in 0..rng.below(4) + 1 {
        s.push_str(&format!("m.add_thread(\"t{t}\", || {{\n"));
        for _ in 0..rng.below(4) + 1 {
            let template = *rng.pick(BODY);
            let statement = fill(rng, template);
            s.push_str("    ");
            s.push_str(&statement);
            s.push('\n');
        }
        s.push_str("});\n");
    }
    if rng.chance(30) {
        s.push_str("m.expect(\"v is 1\", |run| run.value(\"v\") == 1);\n");
    }
    if rng.chance(20) {
        s.push_str(&fill(
            rng,
            "for i in 0..N { m.add_thread(\"x\", || compute(us(1))); }\n",
        ));
    }
    match rng.below(4) {
        0 => s.push_str("let r = m.run();\nprint(r.makespan);\n"),
        1 => s.push_str("let r = m.run();\nr.gantt(\"g.png\");\n"),
        _ => {}
    }
    s
}

/// `source` mangled: lines dropped, doubled or swapped, numbers changed,
/// hostile statements inserted, bytes flipped or the text cut short.
pub fn mutate(rng: &mut Rng, source: &str, quick: bool) -> Vec<u8> {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    for _ in 0..rng.below(4) + 1 {
        if lines.is_empty() {
            break;
        }
        let at = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            2 => {
                let other = rng.below(lines.len());
                lines.swap(at, other);
            }
            3 => {
                let template = *rng.pick(BODY);
                let hostile = fill(rng, template);
                lines.insert(at, hostile);
            }
            4 => {
                // A number replaced.
                let line = &lines[at];
                if let Some(i) = line.find(|c: char| c.is_ascii_digit()) {
                    let end = line[i..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(line.len(), |e| i + e);
                    let n = rng.pick(NUMBERS);
                    lines[at] = format!("{}{n}{}", &line[..i], &line[end..]);
                }
            }
            5 => {
                // A bracket or a semicolon dropped.
                let line = &lines[at];
                if let Some(i) = line.rfind(['}', ')', ';', '{']) {
                    lines[at] = format!("{}{}", &line[..i], &line[i + 1..]);
                }
            }
            _ => lines.truncate(at + 1),
        }
    }
    let mut text = lines.join("\n");
    if quick {
        text = text.replacen(
            "machine(#{",
            "machine(#{ max_events: 20000, max_steps_at_instant: 5000, max_threads: 200,",
            1,
        );
    }
    let mut bytes = text.into_bytes();
    if rng.chance(3) && !bytes.is_empty() {
        let at = rng.below(bytes.len());
        bytes[at] = 0xff;
    }
    bytes
}

/// How one script ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ending {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// It panicked or died of a signal we did not send.
    pub panic: bool,
    /// It passed the wall-clock cap.
    pub hang: bool,
    /// It passed the memory cap.
    pub over_memory: bool,
    /// It printed `error:` with no script position.
    pub no_position: bool,
}

/// The counts of a fuzz run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Scripts run.
    pub scripts: usize,
    /// Exits with 0, 1, 2 and other codes.
    pub exits: [usize; 4],
    /// Panics.
    pub panics: usize,
    /// Hangs.
    pub hangs: usize,
    /// Over the memory cap.
    pub over_memory: usize,
    /// Errors without a position.
    pub no_position: usize,
    /// The first few scripts of each bad kind, for a look.
    pub examples: Vec<(String, PathBuf)>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The slowest script and its time.
    pub slowest: Option<(Duration, PathBuf)>,
}

impl Tally {
    fn add(&mut self, ending: &Ending, path: &Path, took: Duration) {
        self.scripts += 1;
        let slot = match ending.code {
            Some(c @ 0..=2) => c as usize,
            _ => 3,
        };
        if !ending.hang && !ending.over_memory {
            self.exits[slot] += 1;
        }
        let mut bad = Vec::new();
        if ending.panic {
            self.panics += 1;
            bad.push("panic");
        }
        if ending.hang {
            self.hangs += 1;
            bad.push("hang");
        }
        if ending.over_memory {
            self.over_memory += 1;
            bad.push("over-memory");
        }
        if ending.no_position {
            self.no_position += 1;
            bad.push("no position");
        }
        for kind in bad {
            if self.examples.iter().filter(|(k, _)| k == kind).count() < 5 {
                self.examples.push((kind.to_string(), path.to_path_buf()));
            }
        }
        if self.slowest.as_ref().is_none_or(|(t, _)| took > *t) {
            self.slowest = Some((took, path.to_path_buf()));
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fuzz: {} scripts in {:.1}s",
            self.scripts,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "  exit 0                   {:>7}", self.exits[0])?;
        writeln!(f, "  exit 1                   {:>7}", self.exits[1])?;
        writeln!(f, "  exit 2                   {:>7}", self.exits[2])?;
        writeln!(f, "  other exit               {:>7}", self.exits[3])?;
        writeln!(f, "  panics                   {:>7}", self.panics)?;
        writeln!(f, "  hangs (> cap)            {:>7}", self.hangs)?;
        writeln!(f, "  over-memory (> cap)      {:>7}", self.over_memory)?;
        writeln!(f, "  errors without position  {:>7}", self.no_position)?;
        if let Some((took, path)) = &self.slowest {
            writeln!(
                f,
                "  slowest: {:.2}s {}",
                took.as_secs_f64(),
                path.display()
            )?;
        }
        for (kind, path) in &self.examples {
            writeln!(f, "  {kind}: {}", path.display())?;
        }
        Ok(())
    }
}

/// The caps each script runs under.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Wall-clock time.
    pub time: Duration,
    /// Resident memory, bytes.
    pub memory: u64,
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Whether stderr shows an error with no script position, where one
/// exists: every `error:` block needs a `--> file:line:column` line.
/// Errors that have no position by nature (a file that cannot be read as a
/// whole, a bad command line) are not counted.
pub fn error_without_position(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        if !line.starts_with("error:") {
            return false;
        }
        if line.contains("no such file") || line.contains("cannot use") {
            return false;
        }
        let next = lines.get(i + 1).copied().unwrap_or("");
        let Some(at) = next.trim_start().strip_prefix("--> ") else {
            return true;
        };
        let mut parts = at.rsplitn(3, ':');
        let column = parts.next().unwrap_or("");
        let line_no = parts.next().unwrap_or("");
        !(column.parse::<u32>().is_ok() && line_no.parse::<u32>().is_ok())
    })
}

/// Runs `simcli` with `args` under `caps`; stdout and stderr go to files
/// beside `script`.
pub fn run_capped(simcli: &Path, args: &[String], script: &Path, caps: Caps) -> Ending {
    let err_path = script.with_extension("stderr");
    let _ = std::fs::write(script.with_extension("cmd"), args.join(" "));
    let err = std::fs::File::create(&err_path).expect("a stderr file");
    let mut child = Command::new(simcli)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("simcli starts");
    let started = Instant::now();
    let mut ending = Ending::default();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > caps.time {
            ending.hang = true;
        } else if rss(child.id()) > caps.memory {
            ending.over_memory = true;
        } else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let _ = child.kill();
        let _ = child.wait();
        break None;
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if let Some(status) = status {
        ending.code = status.code();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            ending.panic = status.signal().is_some();
        }
        ending.panic |= stderr.contains("panicked at");
        ending.no_position = error_without_position(&stderr);
    }
    ending
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How many scripts.
    pub scripts: usize,
    /// The corpus seed.
    pub seed: u64,
    /// Small limits in every script (for the short slice in `cargo test`).
    pub quick: bool,
    /// Parallel scripts.
    pub jobs: usize,
    /// The caps.
    pub caps: Caps,
    /// Where scripts and outputs go.
    pub dir: PathBuf,
    /// The `scripts/` to mutate.
    pub corpus: Vec<(String, String)>,
}

/// The scripts of `dir` (`*.rhai`), by name, to mutate.
pub fn corpus(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "rhai"))
                .filter_map(|e| {
                    // A long sweep is mangled in its quick form, the one its
                    // header's `// tested with: --set quick=true` names: its
                    // full form takes minutes by design, not by a bug.
                    let source = std::fs::read_to_string(e.path()).ok()?;
                    let source =
                        source.replace("param(\"quick\", false)", "param(\"quick\", true)");
                    Some((e.file_name().to_string_lossy().into_owned(), source))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Script `i` of the plan: its file and the command line to run it.
fn prepare(plan: &Plan, i: usize) -> (PathBuf, Vec<String>) {
    let mut rng = Rng::new(plan.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
    let (name, bytes) = if plan.corpus.is_empty() || rng.chance(50) {
        (
            format!("g{i}.rhai"),
            generate(&mut rng, plan.quick).into_bytes(),
        )
    } else {
        let (base, source) = rng.pick(&plan.corpus).clone();
        let stem = base.trim_end_matches(".rhai");
        (
            format!("m{i}-{stem}.rhai"),
            mutate(&mut rng, &source, plan.quick),
        )
    };
    let path = plan.dir.join(name);
    std::fs::write(&path, bytes).expect("the script is written");
    let out = plan.dir.join(format!("out{i}"));
    // The timeout bounds the evaluation, not the report and charts after
    // it (proportional to the trace): `run` gets half the cap; `explore`
    // may run a schedule, shrink, replay it and draw it: a twentieth each.
    let (mut args, timeout): (Vec<String>, u64) = if rng.chance(85) {
        let args = vec![
            "run".into(),
            path.display().to_string(),
            "--no-chart".into(),
            "--quiet".into(),
        ];
        (args, plan.caps.time.as_secs() / 2)
    } else {
        let args = vec![
            "explore".into(),
            path.display().to_string(),
            "--runs".into(),
            "3".into(),
            "--quiet".into(),
            "--shrink-seconds".into(),
            "1".into(),
            "--shrink-runs".into(),
            "10".into(),
        ];
        (args, plan.caps.time.as_secs() / 20)
    };
    let timeout = timeout.max(1).to_string();
    args.extend([
        "--out".into(),
        out.display().to_string(),
        "--timeout".into(),
        timeout,
        "--max-memory".into(),
        (plan.caps.memory / 2).to_string(),
    ]);
    (path, args)
}

/// Runs the plan with `simcli` and counts the endings; `log` sees each
/// script as it ends.
pub fn fuzz(simcli: &Path, plan: &Plan, log: impl Fn(usize, &Path, &Ending) + Sync) -> Tally {
    std::fs::create_dir_all(&plan.dir).expect("the fuzz folder");
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let tally = std::sync::Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= plan.scripts {
                    break;
                }
                let (path, args) = prepare(plan, i);
                let began = Instant::now();
                let ending = run_capped(simcli, &args, &path, plan.caps);
                let took = began.elapsed();
                log(i, &path, &ending);
                let bad = ending.panic || ending.hang || ending.over_memory || ending.no_position;
                tally.lock().expect("the tally").add(&ending, &path, took);
                if !bad {
                    // Keep only what a look needs.
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(path.with_extension("stderr"));
                    let _ = std::fs::remove_file(path.with_extension("cmd"));
                }
                let _ = std::fs::remove_dir_all(plan.dir.join(format!("out{i}")));
            });
        }
    });
    let mut tally = tally.into_inner().expect("the tally");
    tally.elapsed = started.elapsed();
    tally
}

/// Statements of the concurrent scripts of the replay property: each
/// increments `v` by the number given, or synchronizes.
const CONCURRENT: &[(&str, i64)] = &[
    ("let x = v.load(); v.store(x + 1);", 1),
    (
        "lk.lock(); let x = v.load(); v.store(x + 1); lk.unlock();",
        1,
    ),
    ("v.fetch_add(1);", 1),
    ("lk.lock(); l2.lock(); l2.unlock(); lk.unlock();", 0),
    ("l2.lock(); lk.lock(); lk.unlock(); l2.unlock();", 0),
    ("sem.acquire(); compute(us(N)); sem.release();", 0),
    ("compute(us(N));", 0),
    ("sleep(us(N));", 0),
    ("yield_now();", 0),
    ("if v.load() == 0 { v.store(10); v.store(0); }", 0),
];

/// A small concurrent script whose schedules may lose updates, race or
/// deadlock: the replay property explores it.
pub fn concurrent(rng: &mut Rng) -> String {
    let mut s = format!(
        "let m = machine(#{{ cpus: {}, preset: \"textbook\" }});\n\
         let v = m.variable(\"v\", 0);\nlet lk = m.mutex(\"lk\");\nlet l2 = m.mutex(\"l2\");\n\
         let sem = m.semaphore(\"sem\", 1);\n",
        rng.below(2) + 1
    );
    let mut total = 0;
    for t in 0..rng.below(2) + 2 {
        s.push_str(&format!("m.add_thread(\"t{t}\", || {{\n"));
        for _ in 0..rng.below(4) + 1 {
            let (template, adds) = *rng.pick(CONCURRENT);
            total += adds;
            let n = (rng.below(20) + 1).to_string();
            s.push_str(&format!("    {}\n", template.replace('N', &n)));
        }
        s.push_str("});\n");
    }
    s.push_str(&format!(
        "m.expect(\"every increment counted\", |run| run.value(\"v\") == {total});\n"
    ));
    s
}
