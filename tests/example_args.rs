//! The examples' shared flag parser (`examples/common/args.rs`, also read
//! by `gen/examples/genrec`): `--help`, unknown flags, missing values,
//! defaults.

#[path = "../examples/common/args.rs"]
mod args;

use args::{Args, Flag, help};

const FLAGS: &[Flag] = &[
    ("--k", true, "256", "codes per level"),
    ("--input", true, "", "embeddings"),
    ("--fast", false, "", "go fast"),
];

fn parse(raw: &[&str]) -> Result<Args, String> {
    Args::parse_from(raw.iter().map(|s| s.to_string()), FLAGS)
}

#[test]
fn values_switches_and_defaults() {
    let a = parse(&["--input", "x.npy", "--fast"]).unwrap();
    assert_eq!(a.get("--input"), Some("x.npy"));
    assert!(a.on("--fast") && !a.on("--help"));
    assert_eq!(a.num::<usize>("--k").unwrap(), 256);
    let a = parse(&["--k", "64"]).unwrap();
    assert_eq!(a.num::<usize>("--k").unwrap(), 64);
    assert_eq!(a.opt::<String>("--input").unwrap(), None);
    assert!(
        a.num::<String>("--input")
            .unwrap_err()
            .0
            .contains("required")
    );
    assert!(parse(&["--help"]).unwrap().on("--help"));
    assert!(parse(&["-h"]).unwrap().on("--help"));
}

#[test]
fn unknown_flags_missing_values_and_bad_numbers_are_errors() {
    let e = parse(&["--inptu", "x.npy"]).err().unwrap();
    assert!(e.contains("unknown flag \"--inptu\""), "{e}");
    let e = parse(&["--k"]).err().unwrap();
    assert!(e.contains("--k needs a value"), "{e}");
    let e = parse(&["--k", "many"])
        .unwrap()
        .num::<usize>("--k")
        .unwrap_err();
    assert!(e.0.contains("--k \"many\""), "{e}");
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let h = help("demo", "does things", FLAGS);
    assert!(h.starts_with("demo: does things"));
    for (name, ..) in FLAGS {
        assert!(h.contains(name), "{name} missing from\n{h}");
    }
    assert!(h.contains("[256]") && h.contains("--help"));
}
