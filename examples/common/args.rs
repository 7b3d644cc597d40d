//! The examples' command-line parser (shared with `gen/examples/genrec`):
//! each program lists its flags once, with defaults and help lines;
//! `--help` prints them, an unknown flag or a missing value is a usage
//! error (exit 2), and a failed run prints its error's `Display` (exit 1).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::str::FromStr;

/// One flag: name, whether it takes a value, its default (`""`: none),
/// and its help line.
pub type Flag = (&'static str, bool, &'static str, &'static str);

/// A bad flag value: [`run`] exits 2 on it, as on an unknown flag.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parsed flags.
pub struct Args {
    flags: &'static [Flag],
    values: BTreeMap<&'static str, String>,
    switches: Vec<&'static str>,
}

impl Args {
    /// Parses `std::env::args()` against `flags`. `--help` prints `about`
    /// and every flag, then exits 0; a usage error prints one line naming
    /// the flag and exits 2.
    pub fn parse_or_exit(program: &str, about: &str, flags: &'static [Flag]) -> Args {
        match Args::parse_from(std::env::args().skip(1), flags) {
            Ok(a) if a.on("--help") => {
                print!("{}", help(program, about, flags));
                std::process::exit(0);
            }
            Ok(a) => a,
            Err(e) => {
                eprintln!("{program}: {e}");
                std::process::exit(2);
            }
        }
    }

    /// Parses `raw` (the arguments after the program name) against
    /// `flags` and `--help`; errors name the bad flag.
    pub fn parse_from(
        raw: impl IntoIterator<Item = String>,
        flags: &'static [Flag],
    ) -> Result<Args, String> {
        let mut a = Args {
            flags,
            values: BTreeMap::new(),
            switches: Vec::new(),
        };
        let mut raw = raw.into_iter();
        while let Some(name) = raw.next() {
            if name == "--help" || name == "-h" {
                a.switches.push("--help");
                continue;
            }
            let f = flags
                .iter()
                .find(|f| f.0 == name)
                .ok_or_else(|| format!("unknown flag {name:?}; see --help"))?;
            if f.1 {
                let v = raw.next().ok_or_else(|| format!("{} needs a value", f.0))?;
                a.values.insert(f.0, v);
            } else {
                a.switches.push(f.0);
            }
        }
        Ok(a)
    }

    /// Whether a switch (or `--help`) is on.
    pub fn on(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// The raw value of a flag, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A flag's value parsed, or its default; errors if it has neither.
    pub fn num<T: FromStr>(&self, name: &str) -> Result<T, UsageError> {
        let def = self.flags.iter().find(|f| f.0 == name).map_or("", |f| f.2);
        match self.get(name) {
            Some(v) => parse(name, v),
            None if def.is_empty() => Err(UsageError(format!("{name} is required; see --help"))),
            None => parse(name, def),
        }
    }

    /// A flag's value parsed, if given.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, UsageError> {
        self.get(name).map(|v| parse(name, v)).transpose()
    }
}

fn parse<T: FromStr>(name: &str, v: &str) -> Result<T, UsageError> {
    v.parse()
        .map_err(|_| UsageError(format!("{name} {v:?}: not a valid value; see --help")))
}

/// The help text: `about`, then one line per flag with its default.
pub fn help(program: &str, about: &str, flags: &[Flag]) -> String {
    let mut s = format!("{program}: {about}\n\nflags:\n");
    for (name, value, def, text) in flags
        .iter()
        .chain([&("--help", false, "", "print this help")])
    {
        let v = if *value { " V" } else { "" };
        let d = if def.is_empty() {
            String::new()
        } else {
            format!(" [{def}]")
        };
        s += &format!("  {:<20} {text}{d}\n", format!("{name}{v}"));
    }
    s
}

/// Runs `body`; an error prints as `program: message` (its `Display`)
/// and exits 2 for a [`UsageError`], 1 for any other.
pub fn run(
    program: &str,
    body: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(if e.is::<UsageError>() { 2 } else { 1 })
        }
    }
}
