//! `sid::TextFormat`: IDs as LLM text tokens (`<a_12><b_34><c_5><d_0>`),
//! round trips for every format, and clear errors on malformed text.

use semid::Error;
use semid::sid::TextFormat;

fn formats() -> Vec<TextFormat> {
    vec![
        TextFormat::new(4).unwrap(),
        TextFormat::new(1).unwrap(),
        TextFormat::with_names("[", ":", "]", vec!["c0".into(), "c1".into(), "c2".into()]).unwrap(),
        // No separator: the code starts at the first digit.
        TextFormat::with_names("<|", "", "|>", vec!["sid_a".into(), "sid_b".into()]).unwrap(),
    ]
}

#[test]
fn every_id_round_trips() {
    let mut rng = 12345u64;
    for f in formats() {
        for _ in 0..500 {
            let id: Vec<u16> = (0..f.id_len())
                .map(|_| {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (rng >> 48) as u16
                })
                .collect();
            let text = f.format(&id).unwrap();
            assert_eq!(f.parse(&text).unwrap(), id, "{text}");
            assert_eq!(f.parse(&format!("  {text}\n")).unwrap(), id);
        }
        for edge in [0u16, 9, 10, u16::MAX] {
            let id = vec![edge; f.id_len()];
            assert_eq!(f.parse(&f.format(&id).unwrap()).unwrap(), id);
        }
    }
}

#[test]
fn the_vocabulary_is_every_token_once() {
    let f = TextFormat::new(4).unwrap();
    let v = f.vocabulary(&[256, 256, 256, 46]).unwrap();
    assert_eq!(v.len(), 3 * 256 + 46);
    assert_eq!(
        (v[0].as_str(), v[300].as_str(), v[v.len() - 1].as_str()),
        ("<a_0>", "<b_44>", "<d_45>")
    );
    let mut sorted = v.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), v.len());
    assert_eq!(f.token(2, 5).unwrap(), "<c_5>");
    assert!(f.token(4, 0).is_err());
    assert!(f.vocabulary(&[256, 256, 256]).is_err());
    assert!(f.vocabulary(&[256, 256, 0, 4]).is_err());
}

#[test]
fn malformed_text_says_what_is_wrong() {
    let f = TextFormat::new(4).unwrap();
    for (text, needle) in [
        ("", "0 tokens; IDs have 4"),
        ("<a_12><b_34><c_5>", "3 tokens; IDs have 4"),
        ("<a_12><b_34><c_5><d_0><e_1>", "beyond the ID length 4"),
        ("<a_12><b_34><c_5><e_0>", "which IDs of 4 positions"),
        ("<a_12><c_34><b_5><d_0>", "expected \"b\""),
        ("<b_12><a_34><c_5><d_0>", "expected \"a\""),
        ("a_12><b_34><c_5><d_0>", "does not start with \"<\""),
        ("<a_12><b_34<c_5><d_0>", "not a number"),
        ("<a_12><b_34><c_5><d_0", "no closing \">\""),
        ("<a_12><b_x><c_5><d_0>", "code \"x\""),
        ("<a_12><b_70000><c_5><d_0>", "not a number below 65536"),
        ("<a_12><b_-1><c_5><d_0>", "not a number"),
        ("<a_12><b_+1><c_5><d_0>", "not a number"),
        ("<a_12><b_><c_5><d_0>", "not a number"),
        ("<a12><b_34><c_5><d_0>", "no \"_\""),
        ("<a_12> <b_34><c_5><d_0>", "does not start with"),
    ] {
        match f.parse(text) {
            Err(e @ Error::SidText { .. }) => {
                let m = e.to_string();
                assert!(m.contains(needle), "{text:?}: {m}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // Wrong lengths and bad formats are refused when made.
    assert!(f.format(&[1, 2, 3]).is_err());
    assert!(TextFormat::new(0).is_err() && TextFormat::new(27).is_err());
    assert!(TextFormat::with_names("", "_", ">", vec!["a".into()]).is_err());
    assert!(TextFormat::with_names("<", "_", ">", vec![]).is_err());
    assert!(TextFormat::with_names("<", "_", ">", vec!["a".into(), "a".into()]).is_err());
    assert!(TextFormat::with_names("<", "_", ">", vec!["a>".into()]).is_err());
    assert!(TextFormat::with_names("<", "1", ">", vec!["a".into()]).is_err());
    assert!(TextFormat::with_names("<", "", ">", vec!["c0".into()]).is_err());
}
