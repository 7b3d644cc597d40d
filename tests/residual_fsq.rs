//! Residual FSQ and symmetric FSQ: bit-exact with vector-quantize-pytorch
//! (tests/data/residual_fsq), Quantizer contract, bad input.

use semid::quantize::{Fsq, FsqMode, ResidualFsq};
use semid::{Codes, Embeddings, Error, Par, Quantizer};

fn hex_f32(s: &str) -> Vec<f32> {
    s.split(',')
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
        .collect()
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    s.split(',').map(|v| v.parse().unwrap()).collect()
}

#[test]
fn golden_cases_match_bit_for_bit() {
    let text = include_str!("data/residual_fsq/residual_fsq_cases.tsv");
    let (mut rfsq_rows, mut sym_rows) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "{line}");
        let levels: Vec<u32> = list(f[1]);
        let quantizers: usize = f[2].parse().unwrap();
        let input = hex_f32(f[3]);
        let want_idx: Vec<u16> = list(f[4]);
        let want_out = hex_f32(f[5]);
        let d = levels.len();
        let x = Embeddings::new(&input, d).unwrap();
        let (codes, out) = match f[0] {
            "rfsq" => {
                rfsq_rows += 1;
                let q = ResidualFsq::new(&levels, quantizers).unwrap();
                let c = q.encode(x).unwrap();
                let o = q.decode(&c).unwrap();
                (c, o)
            }
            "sym" => {
                sym_rows += 1;
                let q = Fsq::with_mode(&levels, FsqMode::Symmetric).unwrap();
                let c = q.encode(x).unwrap();
                let mut direct = vec![0f32; d];
                q.quantize_into(&input, &mut direct).unwrap();
                let o = q.decode(&c).unwrap();
                assert_eq!(o, direct, "{line}");
                (c, o)
            }
            k => panic!("unknown kind {k}"),
        };
        assert_eq!(codes.as_slice(), &want_idx[..], "indices of {line}");
        let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&want_out), "output of {line}");
    }
    assert_eq!((rfsq_rows, sym_rows), (300, 200));
}

#[test]
fn residual_layers_refine_and_bad_input_errors() {
    let q = ResidualFsq::new(&[8, 5, 5, 5], 3).unwrap();
    assert_eq!(
        (q.dim(), q.levels(), q.codebook_sizes()),
        (4, 3, vec![1000; 3])
    );
    assert_eq!(Quantizer::levels(&q), 3);
    assert_eq!(q.levels_per_dim(), vec![8, 5, 5, 5]);
    // More layers, smaller error on the soft-clamped input.
    let x: Vec<f32> = (0..4000)
        .map(|i| ((i as f32) * 0.618).sin() * 1.2)
        .collect();
    let e = Embeddings::new(&x, 4).unwrap();
    let mut last = f64::INFINITY;
    for layers in 1..=4 {
        let q = ResidualFsq::new(&[8, 5, 5, 5], layers).unwrap();
        let y = q.decode(&q.encode(e).unwrap()).unwrap();
        let err: f64 = x
            .chunks_exact(4)
            .zip(y.chunks_exact(4))
            .flat_map(|(a, b)| {
                a.iter().zip(b).zip([8u32, 5, 5, 5]).map(|((&a, &b), l)| {
                    let c = 1.0 + 1.0 / (l - 1) as f32;
                    (((a / c).tanh() * c - b) as f64).powi(2)
                })
            })
            .sum::<f64>()
            / x.len() as f64;
        assert!(err < last, "{layers} layers: {err} vs {last}");
        last = err;
    }
    assert!(last < 1e-5, "{last}");
    // Thread count changes nothing.
    let big: Vec<f32> = (0..40_000)
        .map(|i| ((i as f32) * 0.377).cos() * 2.0)
        .collect();
    let eb = Embeddings::new(&big, 4).unwrap();
    let mut seq = vec![0u16; 30_000];
    q.encode_into(eb, &mut seq, Par::Seq).unwrap();
    assert_eq!(q.encode(eb).unwrap().as_slice(), &seq[..]);
    // Bad input.
    assert!(matches!(
        ResidualFsq::new(&[8, 5], 0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(ResidualFsq::new(&[], 2), Err(Error::Empty { .. })));
    assert!(ResidualFsq::new(&[1, 5], 2).is_err());
    assert!(ResidualFsq::new(&[256, 256, 2], 2).is_err());
    let nan = [0.0, f32::NAN, 0.0, 0.0];
    assert!(matches!(
        q.encode(Embeddings::new(&nan, 4).unwrap()),
        Err(Error::NonFinite { row: 0, col: 1, .. })
    ));
    assert!(q.encode(Embeddings::new(&[0.0; 5], 5).unwrap()).is_err());
    assert!(matches!(
        q.decode(&Codes::new(vec![0, 1000, 0], 3).unwrap()),
        Err(Error::TokenOutOfRange { .. })
    ));
    assert!(q.decode(&Codes::new(vec![0, 1], 2).unwrap()).is_err());
}
