//! genrec's flags, read by the examples' shared parser: each known flag
//! with its default and help line; unknown flags are an error, `--help`
//! prints the list.

#[path = "../../../examples/common/args.rs"]
mod parser;
pub use parser::{Args, Flag, run};

/// What genrec does, for `--help`.
pub const ABOUT: &str = "semantic IDs -> a transformer trained on users' SID sequences -> trie-constrained\n\
     beam search, beside popularity, last-item kNN and SASRec (leave-one-out, full ranking).\n\n\
     usage: cargo run --release -p semid-gen --example genrec -- [FLAGS]";

/// Every flag: name, takes a value, default, help.
pub const FLAGS: &[Flag] = &[
    (
        "--inter",
        true,
        "",
        "interactions file: user<TAB>item<TAB>timestamp per line",
    ),
    (
        "--item-emb",
        true,
        "",
        "item embeddings .npy (rows in --item-ids order)",
    ),
    (
        "--item-ids",
        true,
        "",
        "item ids, one per line, row i of --item-emb",
    ),
    ("--items", true, "1000", "built-in data: items"),
    ("--users", true, "4000", "built-in data: users"),
    ("--switch", true, "", "built-in data: topic switch rate"),
    (
        "--content-order",
        false,
        "",
        "built-in data: users follow content order",
    ),
    (
        "--codes",
        true,
        "256",
        "codes per level of the semantic IDs",
    ),
    (
        "--ids",
        true,
        "rqkmeans",
        "semantic IDs (plus a suffix): rqkmeans, rqkmeans-sinkhorn (LC-Rec's last-level Sinkhorn), rqkmeans-sizes (--codebook-sizes), rqvae, rqvae-warm (from RQ-KMeans), pq or opq (--ids-m tokens)",
    ),
    (
        "--codebook-sizes",
        true,
        "512,256,128",
        "rqkmeans-sizes: a codebook size per level (capped at the items)",
    ),
    (
        "--ids-m",
        true,
        "4",
        "pq / opq IDs: sub-spaces (tokens per ID); must divide the width",
    ),
    (
        "--rpg-ids",
        true,
        "pq",
        "rpg: pq (k-means per sub-space) or opq (semid's OPQ, as RPG's paper)",
    ),
    (
        "--model",
        true,
        "decoder,rpg,sasrec",
        "models to train, comma-separated: decoder (generative, decoder-only), tiger (generative, encoder-decoder), rpg (RPG-style parallel PQ codes), sasrec; or all",
    ),
    (
        "--pq-m",
        true,
        "32",
        "rpg: product-quantizer sub-spaces (codes per item)",
    ),
    ("--pq-k", true, "256", "rpg: codes per sub-space"),
    ("--epochs", true, "60", "most epochs"),
    ("--lr", true, "1e-3", "peak learning rate (AdamW)"),
    ("--warmup", true, "200", "warm-up steps"),
    ("--weight-decay", true, "0.01", "AdamW weight decay"),
    ("--dropout", true, "0.2", "dropout rate"),
    ("--batch", true, "64", "windows per batch"),
    (
        "--patience",
        true,
        "8",
        "epochs without improvement before stopping",
    ),
    (
        "--time-budget",
        true,
        "900",
        "seconds after which no epoch starts (per model)",
    ),
    (
        "--stride",
        true,
        "10",
        "items between training window starts",
    ),
    ("--d", true, "128", "width"),
    ("--heads", true, "4", "attention heads"),
    ("--layers", true, "2", "blocks"),
    ("--d-ff", true, "512", "feed-forward width"),
    ("--max-history", true, "20", "history items read"),
    (
        "--eval-history",
        true,
        "",
        "history items at validation and test (default: --max-history)",
    ),
    (
        "--tied",
        false,
        "",
        "output logits from the input embeddings (SASRec's tying)",
    ),
    (
        "--plain",
        false,
        "",
        "decoder: GPT-style inputs (own token + absolute position)",
    ),
    (
        "--content",
        false,
        "",
        "decoder and SASRec also read each item's content embedding (off by default)",
    ),
    (
        "--no-content",
        false,
        "",
        "no item-embedding input (the default; kept for old command lines)",
    ),
    ("--seed", true, "1", "seed of IDs, weights and batches"),
    ("--beam", true, "20", "beam width of the constrained search"),
    (
        "--masked",
        false,
        "",
        "plain token softmax in training and decoding (no renormalisation over valid IDs)",
    ),
    (
        "--valid-beams",
        true,
        "",
        "after training, validation NDCG@10 of the generative models at these beam widths (e.g. 5,10,50)",
    ),
    (
        "--valid-users",
        true,
        "0",
        "users scored for validation each epoch (0: all)",
    ),
    (
        "--new-items",
        true,
        "0",
        "hold this many items out, insert them after training, rank them",
    ),
    (
        "--lists",
        true,
        "",
        "write every method's per-user top-10 test lists to this file (JSON lines; for bootstrap.py)",
    ),
    (
        "--json",
        false,
        "",
        "one JSON line per method after the table",
    ),
    ("--quiet", false, "", "no per-epoch lines"),
];
