//! Item embeddings and user sequences: from files or built in; the
//! new-item hold-out.

use semid::seq::{ItemIds, SequenceConfig, Sequences, read_interactions, synthetic_sequences};
use semid::synthetic::{MixtureConfig, hierarchical_mixture};

use crate::Res;
use crate::args::Args;

/// Item embeddings (row-major), their dimension, the sequences, and a
/// description of the source.
pub fn load(args: &Args) -> Res<(Vec<f32>, usize, Sequences, String)> {
    if let Some(inter) = args.get("--inter") {
        let (emb_path, ids_path) = match (args.get("--item-emb"), args.get("--item-ids")) {
            (Some(e), Some(i)) => (e, i),
            _ => return Err("--inter needs --item-emb FILE.npy and --item-ids FILE".into()),
        };
        let ids = ItemIds::read(ids_path).map_err(|e| e.to_string())?;
        let (emb, dim) = semid::npy::read_npy(emb_path).map_err(|e| e.to_string())?;
        if emb.len() / dim != ids.len() {
            return Err(format!(
                "{emb_path} has {} rows but {ids_path} lists {} ids",
                emb.len() / dim,
                ids.len()
            )
            .into());
        }
        let (seqs, r) = read_interactions(inter, &ids).map_err(|e| e.to_string())?;
        println!(
            "read  {inter}: {} lines, {} users kept, {} interactions",
            r.lines,
            seqs.len(),
            seqs.n_interactions()
        );
        return Ok((emb, dim, seqs, inter.to_string()));
    }
    let n: usize = args.num("--items")?;
    let catalog = MixtureConfig {
        n,
        dim: 64,
        topics: (n / 75).max(1),
        ..MixtureConfig::default()
    };
    let cfg = SequenceConfig {
        users: args.num("--users")?,
        switch: args
            .opt("--switch")?
            .unwrap_or(SequenceConfig::default().switch),
        content_order: args.on("--content-order"),
        ..SequenceConfig::default()
    };
    let seqs = synthetic_sequences(&cfg, &catalog)?;
    let source = format!(
        "built-in: {} topics x {} sub-topics, {} users of {}-{} items",
        catalog.topics, catalog.subtopics, cfg.users, cfg.min_len, cfg.max_len
    );
    Ok((hierarchical_mixture(&catalog), catalog.dim, seqs, source))
}

/// Holds `n_new` items (chosen in a seeded order) out of the catalog for
/// the new-item test: they take the last ids, `n - n_new ..`, and their
/// embedding rows move with them. Returns the relabelled embeddings, the
/// sequences without the held-out items (users left with fewer than 3
/// items dropped), and the relabelled full sequences of the users whose
/// last item is held out.
pub fn hold_out(
    emb: Vec<f32>,
    dim: usize,
    seqs: Sequences,
    n_new: usize,
    seed: u64,
) -> Res<(Vec<f32>, Sequences, Sequences)> {
    if n_new == 0 {
        return Ok((emb, seqs, Sequences::new()));
    }
    let n = emb.len() / dim;
    let mut held = vec![false; n];
    for i in semid_gen::shuffled(n, seed ^ 0x6e65_7769)
        .into_iter()
        .take(n_new)
    {
        held[i] = true;
    }
    // Kept items first (in their order), then the held-out ones.
    let order: Vec<usize> = (0..n)
        .filter(|&i| !held[i])
        .chain((0..n).filter(|&i| held[i]))
        .collect();
    let mut new_id = vec![0u32; n];
    for (to, &from) in order.iter().enumerate() {
        new_id[from] = to as u32;
    }
    let out: Vec<f32> = order
        .iter()
        .flat_map(|&i| emb[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let (mut warm, mut cold) = (Sequences::new(), Sequences::new());
    let mut dropped = 0;
    for u in 0..seqs.len() {
        let items: Vec<u32> = seqs.items(u).iter().map(|&i| new_id[i as usize]).collect();
        let kept: Vec<u32> = seqs
            .items(u)
            .iter()
            .filter(|&&i| !held[i as usize])
            .map(|&i| new_id[i as usize])
            .collect();
        if kept.len() >= semid::seq::MIN_INTERACTIONS {
            warm.push(seqs.user(u), &kept);
        } else {
            dropped += 1;
        }
        let last = seqs.items(u).last().copied();
        if items.len() >= 2 && last.is_some_and(|i| held[i as usize]) {
            cold.push(seqs.user(u), &items);
        }
    }
    println!(
        "new   {n_new} items held out of the catalog and the training data ({dropped} users left with < {} items dropped); {} users whose last item is one of them",
        semid::seq::MIN_INTERACTIONS,
        cold.len()
    );
    Ok((out, warm, cold))
}
