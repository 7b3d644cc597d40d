//! A codebook size per level (issue 25, item 3) for RQ-KMeans and RQ-VAE:
//! fits, encodes, decodes, indexes and model files (format version 2 only
//! where the sizes differ).

use std::path::PathBuf;

mod common;

use semid::quantize::{RqVae, RqVaeConfig};
use semid::sid::CollisionPolicy;
use semid::{
    Embeddings, EncodeSearch, Error, ModelFile, Par, Quantizer, RqKMeans, RqKMeansConfig,
    SemanticIndex, stats,
};

fn golden(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(f)
}

fn mixture(n: usize, dim: usize) -> Vec<f32> {
    semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n,
        dim,
        topics: 12,
        ..Default::default()
    })
}

fn small_vae(sizes: Vec<usize>) -> RqVaeConfig {
    let mut c = RqVaeConfig::default().codebook_sizes(sizes).seed(3);
    c.hidden = vec![24];
    c.latent = 6;
    c.epochs = 2;
    c.min_steps = 0;
    c.batch_size = 256;
    c
}

#[test]
fn rq_kmeans_fits_a_size_per_level() {
    let data = mixture(3000, 16);
    let x = Embeddings::new(&data, 16).unwrap();
    let cfg = RqKMeansConfig::with_codebook_sizes(&[48, 24, 8]).seed(5);
    let (rq, report) = RqKMeans::fit(&cfg, x).unwrap();
    assert_eq!(rq.codebook_sizes(), vec![48, 24, 8]);
    assert_eq!(rq.codebooks().len(), (48 + 24 + 8) * 16);
    for (l, &k) in [48usize, 24, 8].iter().enumerate() {
        assert_eq!(rq.codebook(l).len(), k * 16);
    }
    // Each level lowers the error, and each uses most of its codes.
    let mses: Vec<f64> = report.levels.iter().map(|l| l.mse).collect();
    assert!(mses.windows(2).all(|w| w[1] < w[0]), "{mses:?}");
    assert!(report.levels.iter().all(|l| l.utilization > 0.8));
    let codes = rq.encode(x).unwrap();
    for row in codes.iter() {
        assert!(row[0] < 48 && row[1] < 24 && row[2] < 8, "{row:?}");
    }
    // Greedy codes are each level's nearest codeword of the residual.
    let row0 = &data[..16];
    let mut resid = row0.to_vec();
    for (l, &t) in codes.row(0).iter().enumerate() {
        let cb = rq.codebook(l);
        let d = |j: usize| -> f32 {
            resid
                .iter()
                .zip(&cb[j * 16..(j + 1) * 16])
                .map(|(a, b)| (a - b) * (a - b))
                .sum()
        };
        let best = (0..rq.codebook_size(l))
            .min_by(|&a, &b| d(a).total_cmp(&d(b)))
            .unwrap();
        assert!(d(t as usize) <= d(best) * (1.0 + 1e-5) + 1e-6);
        for (a, b) in resid.iter_mut().zip(&cb[t as usize * 16..]) {
            *a -= b;
        }
    }
    // Beam search runs over levels of different sizes and does not lose
    // to greedy.
    let greedy = stats::mse(x, &rq.decode(&codes).unwrap()).unwrap();
    let mut out = vec![0u16; 3000 * 3];
    rq.encode_search_into(x, EncodeSearch::Beam(4), &mut out, Par::Seq)
        .unwrap();
    let beam = semid::Codes::new(out, 3).unwrap();
    let beam_mse = stats::mse(x, &rq.decode(&beam).unwrap()).unwrap();
    assert!(beam_mse <= greedy * (1.0 + 1e-6), "{beam_mse} vs {greedy}");
    // The same seed gives the same model with any thread count.
    let (rq1, _) = RqKMeans::fit(&cfg.clone().par(Par::Seq), x).unwrap();
    assert_eq!(rq1, rq);
}

#[test]
fn an_index_over_unequal_levels_searches() {
    let data = mixture(1500, 12);
    let x = Embeddings::new(&data, 12).unwrap();
    let cfg = RqKMeansConfig::with_codebook_sizes(&[32, 8]).seed(2);
    let (index, _, _) =
        SemanticIndex::fit::<RqKMeans>(&cfg, x, CollisionPolicy::AppendSuffix, Par::Seq).unwrap();
    let sizes = index.trie().codebook_sizes();
    assert_eq!(&sizes[..2], &[32, 8]);
    // Searched by its own embedding, an item's top hit carries its own
    // code (the greedy path) for nearly every item: the beam walks levels
    // of 32 and then 8 codes.
    let mut beam = semid::BeamSearch::new(8, 1).unwrap();
    let hits = index.search_embeddings(x, &mut beam).unwrap();
    let lists = hits.to_lists();
    let same = (0..1500u32)
        .filter(|&i| {
            let top = lists[i as usize][0];
            index.id_of(top).unwrap()[..2] == index.id_of(i).unwrap()[..2]
        })
        .count();
    assert!(
        same >= 1500 * 9 / 10,
        "{same} of 1500 top hits share the item's code"
    );
    let back = SemanticIndex::from_bytes(&index.to_bytes().unwrap()).unwrap();
    assert_eq!(back.trie().codebook_sizes(), sizes);
}

#[test]
fn rq_vae_trains_a_size_per_level() {
    let data = mixture(1200, 16);
    let x = Embeddings::new(&data, 16).unwrap();
    let (vae, reports) = RqVae::fit(&small_vae(vec![32, 8]), x).unwrap();
    assert_eq!(vae.codebook_sizes(), vec![32, 8]);
    assert_eq!(vae.codebooks().len(), (32 + 8) * 6);
    assert!(reports.iter().all(|r| r.recon_loss.is_finite()));
    let codes = vae.encode(x).unwrap();
    assert!(codes.iter().all(|r| r[0] < 32 && r[1] < 8));
    let used: std::collections::HashSet<u16> = codes.iter().map(|r| r[1]).collect();
    assert!(used.len() >= 6, "level 2 uses {} of 8 codes", used.len());
    let back = RqVae::from_bytes(&vae.to_bytes().unwrap()).unwrap();
    assert_eq!(back, vae);
    assert_eq!(back.encode(x).unwrap(), codes);
}

#[test]
fn equal_sizes_still_write_version_1() {
    let data = mixture(600, 8);
    let x = Embeddings::new(&data, 8).unwrap();
    let (a, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(1), x).unwrap();
    let (b, _) = RqKMeans::fit(&RqKMeansConfig::with_codebook_sizes(&[16, 16]).seed(1), x).unwrap();
    assert_eq!(a, b);
    let bytes = b.to_bytes().unwrap();
    assert_eq!(semid::format::inspect(&bytes).unwrap().version, 1);
    assert_eq!(bytes, a.to_bytes().unwrap());
    let (c, _) = RqKMeans::fit(&RqKMeansConfig::with_codebook_sizes(&[16, 8]).seed(1), x).unwrap();
    assert_eq!(
        semid::format::inspect(&c.to_bytes().unwrap())
            .unwrap()
            .version,
        2
    );
}

#[test]
fn bad_sizes_are_typed_errors() {
    let data = mixture(300, 8);
    let x = Embeddings::new(&data, 8).unwrap();
    let field = |e: Error| match e {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    for sizes in [vec![16, 0], vec![70_000, 16]] {
        let e = RqKMeans::fit(&RqKMeansConfig::with_codebook_sizes(&sizes), x).unwrap_err();
        assert_eq!(field(e), "codebook_sizes", "{sizes:?}");
        let e = RqVae::fit(&small_vae(sizes.clone()), x).unwrap_err();
        assert_eq!(field(e), "codebook_sizes", "{sizes:?}");
    }
    // One size per level.
    let mut cfg = RqKMeansConfig::with_codebook_sizes(&[16, 8]);
    cfg.levels = 3;
    assert_eq!(field(RqKMeans::fit(&cfg, x).unwrap_err()), "codebook_sizes");
    let mut vc = small_vae(vec![16, 8]);
    vc.levels = 1;
    assert_eq!(field(RqVae::fit(&vc, x).unwrap_err()), "codebook_sizes");
    // More codes at a level than rows.
    let e = RqKMeans::fit(&RqKMeansConfig::with_codebook_sizes(&[8, 400]), x).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
    // Codebooks that do not match the sizes.
    assert!(RqKMeans::from_sized_codebooks(vec![0.5; 10 * 8], &[4, 4], 8).is_err());
    assert!(RqKMeans::from_sized_codebooks(vec![0.5; 8 * 8], &[4, 4], 8).is_ok());
    assert!(RqKMeans::from_sized_codebooks(vec![f32::NAN; 8 * 8], &[4, 4], 8).is_err());
    assert!(RqKMeans::from_sized_codebooks(vec![], &[], 8).is_err());
}

/// Golden version-2 files: an RQ-KMeans and an RQ-VAE with unequal
/// levels. They must load unchanged forever, pass the model-file
/// contract, and this build must write the same bytes. Written once with
/// `SEMID_WRITE_GOLDEN=1`.
#[test]
fn golden_v2_sized_models_load_forever() {
    let rq_path = golden("rq_kmeans_sizes_v2.semid");
    let vae_path = golden("rqvae_sizes_v2.semid");
    let data = mixture(400, 8);
    let x = Embeddings::new(&data, 8).unwrap();
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        let (rq, _) =
            RqKMeans::fit(&RqKMeansConfig::with_codebook_sizes(&[8, 4, 2]).seed(1), x).unwrap();
        rq.save(&rq_path).unwrap();
        let mut c = small_vae(vec![8, 4]);
        c.hidden = vec![6];
        c.latent = 3;
        c.epochs = 1;
        c.batch_size = 64;
        let (vae, _) = RqVae::fit(&c, x).unwrap();
        vae.save(&vae_path).unwrap();
    }
    let other = std::fs::read(golden("kmeans_v1.semid")).unwrap();
    let rq_bytes = std::fs::read(&rq_path).unwrap();
    assert_eq!(semid::format::inspect(&rq_bytes).unwrap().version, 2);
    let rq = RqKMeans::from_bytes(&rq_bytes).unwrap();
    assert_eq!((rq.dim(), rq.codebook_sizes()), (8, vec![8, 4, 2]));
    assert_eq!(rq.to_bytes().unwrap(), rq_bytes);
    common::check_model_file(&rq, 7, &other);
    let vae_bytes = std::fs::read(&vae_path).unwrap();
    assert_eq!(semid::format::inspect(&vae_bytes).unwrap().version, 2);
    let vae = RqVae::from_bytes(&vae_bytes).unwrap();
    assert_eq!((vae.dim(), vae.codebook_sizes()), (8, vec![8, 4]));
    assert_eq!(vae.to_bytes().unwrap(), vae_bytes);
    common::check_model_file(&vae, 7, &other);
    // Both load through AnyQuantizer and encode in range.
    for bytes in [&rq_bytes, &vae_bytes] {
        let q = semid::AnyQuantizer::from_bytes(bytes).unwrap();
        let codes = q.encode(x).unwrap();
        let sizes = q.codebook_sizes();
        assert!(
            codes
                .iter()
                .all(|r| r.iter().zip(&sizes).all(|(&t, &k)| (t as usize) < k))
        );
    }
}
