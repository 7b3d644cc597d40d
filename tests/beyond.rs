//! `metrics::beyond_accuracy` against the values of a plain numpy twin
//! (tests/data/beyond/make_golden.py wrote tests/data/beyond/golden.txt).

use semid::Embeddings;
use semid::metrics::{Rankings, beyond_accuracy};

struct Golden {
    dim: usize,
    k: usize,
    emb: Vec<f32>,
    pop: Vec<u64>,
    lists: Vec<Vec<u32>>,
    want: [f64; 4],
}

fn golden() -> Golden {
    let text = include_str!("data/beyond/golden.txt");
    let mut g = Golden {
        dim: 0,
        k: 0,
        emb: Vec::new(),
        pop: Vec::new(),
        lists: Vec::new(),
        want: [0.0; 4],
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let nums = || rest.split_whitespace();
        match key {
            "dim" => g.dim = rest.parse().unwrap(),
            "k" => g.k = rest.parse().unwrap(),
            "emb" => g.emb = nums().map(|x| x.parse().unwrap()).collect(),
            "pop" => g.pop = nums().map(|x| x.parse().unwrap()).collect(),
            "list" => g.lists.push(nums().map(|x| x.parse().unwrap()).collect()),
            "coverage" => g.want[0] = rest.parse().unwrap(),
            "diversity" => g.want[1] = rest.parse().unwrap(),
            "novelty" => g.want[2] = rest.parse().unwrap(),
            "gini" => g.want[3] = rest.parse().unwrap(),
            _ => {}
        }
    }
    g
}

#[test]
fn beyond_accuracy_matches_the_numpy_twin() {
    let g = golden();
    assert_eq!(g.lists.len(), 12);
    let r = Rankings::from_lists(&g.lists);
    let e = Embeddings::new(&g.emb, g.dim).unwrap();
    let b = beyond_accuracy(&r, g.k, &g.pop, Some(e)).unwrap();
    let got = [b.coverage, b.diversity.unwrap(), b.novelty, b.gini];
    for (name, (a, w)) in ["coverage", "diversity", "novelty", "gini"]
        .iter()
        .zip(got.iter().zip(&g.want))
    {
        assert!((a - w).abs() < 1e-9, "{name}: {a} vs numpy {w}");
    }
    let none = beyond_accuracy(&r, g.k, &g.pop, None).unwrap();
    assert_eq!(none.diversity, None);
    assert_eq!(none.novelty, b.novelty);
}

#[test]
fn beyond_accuracy_refuses_bad_input() {
    let g = golden();
    let r = Rankings::from_lists(&g.lists);
    assert!(beyond_accuracy(&r, 0, &g.pop, None).is_err());
    assert!(beyond_accuracy(&r, 5, &[], None).is_err());
    assert!(
        beyond_accuracy(&r, 5, &g.pop[..10], None).is_err(),
        "item 29 is outside"
    );
    let e = Embeddings::new(&g.emb[..8 * g.dim], g.dim).unwrap();
    assert!(beyond_accuracy(&r, 5, &g.pop, Some(e)).is_err());
    let mut nan = g.emb.clone();
    nan[5] = f32::NAN;
    let e = Embeddings::new(&nan, g.dim).unwrap();
    assert!(matches!(
        beyond_accuracy(&r, 5, &g.pop, Some(e)),
        Err(semid::Error::NonFinite { .. })
    ));
}
