//! User–item interaction sequences for generative recommendation: loading
//! (tab-separated files and RecBole `.inter` files), the leave-one-out
//! split of TIGER and P5, training examples, and a synthetic generator over
//! the built-in catalog.
//!
//! Items are rows of an item-embedding matrix: an [`ItemIds`] maps each
//! item id of the interaction file to its row.
//!
//! ```
//! use semid::seq::{ItemIds, LeaveOneOut, parse_interactions};
//! let items = ItemIds::new(["a", "b", "c", "d"].map(String::from).to_vec())?;
//! let text = "u1\tb\t2\nu1\ta\t1\nu1\tc\t3\nu1\td\t4\nu2\ta\t1\n";
//! let (seqs, report) = parse_interactions(text, &items)?;
//! assert_eq!(seqs.items(0), &[0, 1, 2, 3]); // ordered by time
//! assert_eq!(report.short_users, 1); // u2 has fewer than 3 interactions
//! let split = LeaveOneOut::new(seqs, 20)?;
//! let test: Vec<_> = split.test().collect();
//! assert_eq!((test[0].history, test[0].target), (&[0, 1, 2][..], 3));
//! assert_eq!(split.train().count(), 1); // a → b
//! # Ok::<(), semid::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result, invalid};
use crate::rng::Rng;
use crate::synthetic::{MixtureConfig, hierarchical_mixture, mixture_labels};

/// Fewest interactions a user needs for the leave-one-out split (one to
/// train on, one to validate, one to test).
pub const MIN_INTERACTIONS: usize = 3;

/// Item ids in row order: row `r` of the item-embedding matrix is item
/// `ids[r]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemIds {
    ids: Vec<String>,
    rows: HashMap<String, u32>,
}

impl ItemIds {
    /// Ids in row order. Errors: no ids, more than `u32::MAX`, an empty id,
    /// or an id listed twice (the error names its line, 1-based).
    pub fn new(ids: Vec<String>) -> Result<ItemIds> {
        if ids.is_empty() {
            return Err(Error::Empty { what: "item ids" });
        }
        if ids.len() > u32::MAX as usize {
            return Err(invalid("item ids", "more than u32::MAX ids"));
        }
        let mut rows = HashMap::with_capacity(ids.len());
        for (r, id) in ids.iter().enumerate() {
            if id.is_empty() {
                return Err(parse_error("item id file", r + 1, "empty id"));
            }
            if let Some(first) = rows.insert(id.clone(), r as u32) {
                let why = format!("id {id:?} is listed twice (first on line {})", first + 1);
                return Err(parse_error("item id file", r + 1, why));
            }
        }
        Ok(ItemIds { ids, rows })
    }

    /// Reads one id per line, in row order (surrounding white space is
    /// trimmed; blank lines at the end are ignored, a blank line inside is
    /// an error).
    pub fn read(path: impl AsRef<Path>) -> Result<ItemIds> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(crate::error::io_at(path))?;
        let mut ids: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        while ids.last().is_some_and(String::is_empty) {
            ids.pop();
        }
        ItemIds::new(ids).map_err(crate::error::in_file(path))
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false (an `ItemIds` holds at least one id).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The row of item `id`, if listed.
    #[must_use]
    pub fn row(&self, id: &str) -> Option<u32> {
        self.rows.get(id).copied()
    }

    /// The id of row `row`, if in range.
    #[must_use]
    pub fn id(&self, row: usize) -> Option<&str> {
        self.ids.get(row).map(String::as_str)
    }
}

/// Each user's items (embedding rows) in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequences {
    users: Vec<String>,
    offsets: Vec<usize>,
    items: Vec<u32>,
}

impl Sequences {
    /// No users.
    #[must_use]
    pub fn new() -> Sequences {
        Sequences {
            users: Vec::new(),
            offsets: vec![0],
            items: Vec::new(),
        }
    }

    /// Appends a user's items, in time order.
    pub fn push(&mut self, user: impl Into<String>, items: &[u32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.users.push(user.into());
        self.items.extend_from_slice(items);
        self.offsets.push(self.items.len());
    }

    /// Number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there is no user.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// User `u`'s id.
    ///
    /// # Panics
    /// If `u >= len()`.
    #[must_use]
    pub fn user(&self, u: usize) -> &str {
        &self.users[u]
    }

    /// User `u`'s items in time order.
    ///
    /// # Panics
    /// If `u >= len()`.
    #[must_use]
    pub fn items(&self, u: usize) -> &[u32] {
        &self.items[self.offsets[u]..self.offsets[u + 1]]
    }

    /// Interactions over all users.
    #[must_use]
    pub fn n_interactions(&self) -> usize {
        self.items.len()
    }

    /// The largest item row plus one (0 when empty).
    #[must_use]
    pub fn n_items(&self) -> usize {
        self.items.iter().max().map_or(0, |&m| m as usize + 1)
    }
}

/// What loading an interaction file read and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Lines read (the header and blank lines included).
    pub lines: usize,
    /// Whether the first line was a header (RecBole `.inter`, or a
    /// tab-separated file whose first timestamp is not a number).
    pub header: bool,
    /// Interactions kept.
    pub interactions: usize,
    /// Lines skipped because their item is not in the [`ItemIds`] (items
    /// without an embedding).
    pub unknown_items: usize,
    /// Users skipped because they have fewer than [`MIN_INTERACTIONS`]
    /// known interactions.
    pub short_users: usize,
    /// Users kept.
    pub users: usize,
}

/// Reads an interaction file: `user<TAB>item<TAB>timestamp` lines, or a
/// RecBole atomic `.inter` file (a header such as `user_id:token
/// item_id:token rating:float timestamp:float`, columns found by name).
/// See [`parse_interactions`].
pub fn read_interactions(
    path: impl AsRef<Path>,
    items: &ItemIds,
) -> Result<(Sequences, LoadReport)> {
    let path = path.as_ref();
    parse_interactions(
        &std::fs::read_to_string(path).map_err(crate::error::io_at(path))?,
        items,
    )
    .map_err(crate::error::in_file(path))
}

/// [`read_interactions`] on a file's text.
///
/// - Each user's interactions are ordered by timestamp; equal timestamps
///   keep file order. Users come in order of first appearance.
/// - Skipped and counted in the [`LoadReport`]: blank lines, lines whose
///   item is not in `items`, users with fewer than [`MIN_INTERACTIONS`].
/// - Errors, naming the 1-based line: fewer columns than needed, a
///   timestamp that is not a finite number, a RecBole header without
///   `user_id`, `item_id` or `timestamp`. No interaction left at all is
///   [`Error::Empty`].
pub fn parse_interactions(text: &str, items: &ItemIds) -> Result<(Sequences, LoadReport)> {
    let mut report = LoadReport::default();
    let mut lines = text.lines().enumerate().peekable();
    // Columns of user, item and timestamp.
    let mut cols = [0usize, 1, 2];
    if let Some(&(_, first)) = lines.peek() {
        let fields: Vec<&str> = first.split('\t').map(str::trim).collect();
        if fields.iter().any(|f| f.contains(':')) {
            for (c, name) in cols.iter_mut().zip(["user_id", "item_id", "timestamp"]) {
                let pos = fields
                    .iter()
                    .position(|f| f.split(':').next() == Some(name));
                *c = pos.ok_or_else(|| {
                    parse_error(
                        "interaction file",
                        1,
                        format!("the header has no `{name}` column"),
                    )
                })?;
            }
            report.header = true;
        } else if fields.len() >= 3 && fields[2].parse::<f64>().is_err() {
            report.header = true;
        }
        if report.header {
            lines.next();
            report.lines += 1;
        }
    }
    let need = cols.iter().max().map_or(0, |&m| m + 1);
    let mut user_of: HashMap<&str, usize> = HashMap::new();
    let mut per_user: Vec<(&str, Vec<(f64, u32)>)> = Vec::new();
    for (i, line) in lines {
        report.lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if fields.len() < need {
            let why = format!(
                "{} tab-separated columns; expected at least {need}",
                fields.len()
            );
            return Err(parse_error("interaction file", i + 1, why));
        }
        let (user, item, time) = (fields[cols[0]], fields[cols[1]], fields[cols[2]]);
        let t: f64 = match time.parse() {
            Ok(t) if f64::is_finite(t) => t,
            _ => {
                let why = format!("timestamp {time:?} is not a finite number");
                return Err(parse_error("interaction file", i + 1, why));
            }
        };
        let Some(row) = items.row(item) else {
            report.unknown_items += 1;
            continue;
        };
        let u = *user_of.entry(user).or_insert_with(|| {
            per_user.push((user, Vec::new()));
            per_user.len() - 1
        });
        per_user[u].1.push((t, row));
    }
    let mut seqs = Sequences::new();
    let mut row_buf = Vec::new();
    for (user, mut events) in per_user {
        if events.len() < MIN_INTERACTIONS {
            report.short_users += 1;
            continue;
        }
        // Stable: equal times keep file order.
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        row_buf.clear();
        row_buf.extend(events.iter().map(|e| e.1));
        seqs.push(user, &row_buf);
    }
    if seqs.is_empty() {
        return Err(Error::Empty {
            what: "interactions (no user with 3 known interactions)",
        });
    }
    report.users = seqs.len();
    report.interactions = seqs.n_interactions();
    Ok((seqs, report))
}

/// One prediction task: a user's recent `history` (oldest first) and the
/// item that came next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Example<'a> {
    /// User index in the [`Sequences`].
    pub user: usize,
    /// The items before `target`, the last `max_history` of them.
    pub history: &'a [u32],
    /// The next item.
    pub target: u32,
}

/// The leave-one-out split of TIGER and P5: per user, the last item is the
/// test target, the second-to-last the validation target, the rest
/// training. Histories are capped to the last `max_history` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveOneOut {
    seqs: Sequences,
    max_history: usize,
}

impl LeaveOneOut {
    /// Errors: `max_history == 0`, no users, or a user with fewer than
    /// [`MIN_INTERACTIONS`] items.
    pub fn new(seqs: Sequences, max_history: usize) -> Result<LeaveOneOut> {
        if max_history == 0 {
            return Err(invalid("max_history", "is 0; keep at least 1 item"));
        }
        if seqs.is_empty() {
            return Err(Error::Empty { what: "sequences" });
        }
        if let Some(u) = (0..seqs.len()).find(|&u| seqs.items(u).len() < MIN_INTERACTIONS) {
            let why = format!(
                "user {:?} has {} items; the split needs at least {MIN_INTERACTIONS}",
                seqs.user(u),
                seqs.items(u).len()
            );
            return Err(invalid("sequences", why));
        }
        Ok(LeaveOneOut { seqs, max_history })
    }

    /// The sequences split.
    #[must_use]
    pub fn sequences(&self) -> &Sequences {
        &self.seqs
    }

    /// The history cap.
    #[must_use]
    pub fn max_history(&self) -> usize {
        self.max_history
    }

    fn example(&self, user: usize, at: usize) -> Example<'_> {
        let s = self.seqs.items(user);
        Example {
            user,
            history: &s[at.saturating_sub(self.max_history)..at],
            target: s[at],
        }
    }

    /// Training examples: every prefix of every training sequence (all but
    /// the last two items), user by user, oldest target first.
    pub fn train(&self) -> impl Iterator<Item = Example<'_>> + '_ {
        (0..self.seqs.len()).flat_map(move |u| {
            let n = self.seqs.items(u).len();
            (1..n - 2).map(move |at| self.example(u, at))
        })
    }

    /// One validation example per user: the second-to-last item after
    /// everything before it.
    pub fn valid(&self) -> impl Iterator<Item = Example<'_>> + '_ {
        (0..self.seqs.len()).map(move |u| self.example(u, self.seqs.items(u).len() - 2))
    }

    /// One test example per user: the last item after everything before it
    /// (the validation item included).
    pub fn test(&self) -> impl Iterator<Item = Example<'_>> + '_ {
        (0..self.seqs.len()).map(move |u| self.example(u, self.seqs.items(u).len() - 1))
    }
}

/// How [`synthetic_sequences`] draws users' histories.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceConfig {
    /// Users.
    pub users: usize,
    /// Fewest items per user (at least [`MIN_INTERACTIONS`]).
    pub min_len: usize,
    /// Most items per user.
    pub max_len: usize,
    /// Chance that the next item stays in the current sub-topic.
    pub stay: f64,
    /// Chance, when leaving the sub-topic, to stay in the same topic.
    pub same_topic: f64,
    /// Chance that the next item comes from the user's other interest
    /// (every user follows two, each in its own sub-topic); 0 follows one.
    pub switch: f64,
    /// Order of the items within a sub-topic's chain: `true` along the
    /// catalog's widest axis (an item's successors are its content
    /// neighbours in one direction), `false` a seeded order that only
    /// co-occurrence reveals (like a series or a playlist: content tells
    /// the sub-topic, not the successor).
    pub content_order: bool,
    /// Seed.
    pub seed: u64,
}

impl Default for SequenceConfig {
    /// 5 000 users of 5–20 items with two interests; 20% of steps switch
    /// to the other interest; 75% of an interest's steps stay in its
    /// sub-topic (in a seeded chain order), and half of the others stay in
    /// the topic.
    fn default() -> Self {
        SequenceConfig {
            users: 5_000,
            min_len: 5,
            max_len: 20,
            stay: 0.75,
            same_topic: 0.5,
            switch: 0.2,
            content_order: false,
            seed: 11,
        }
    }
}

/// Users' item sequences over the catalog of
/// [`hierarchical_mixture`]`(catalog)`.
///
/// Every user follows two interests, each a place in a sub-topic drawn by
/// the topics' popularity, and interleaves them: with chance `switch` the
/// next item comes from the other interest than the last item's. Within a
/// sub-topic the items form a chain (see
/// [`SequenceConfig::content_order`]): an interest's next item is one to
/// three links after its previous one. With chance `1 − stay` the interest
/// moves to another sub-topic (of the same topic with chance `same_topic`,
/// else of a topic drawn by popularity) and enters its chain at an item
/// drawn with a skew towards its first items.
///
/// So the next item depends on the recent items (not only the last one)
/// and on an order that content similarity does not reveal (or, with
/// `content_order`, only up to its direction): a sequence model can beat
/// both popularity and a nearest-neighbour search of the last item.
/// Deterministic for a seed.
pub fn synthetic_sequences(cfg: &SequenceConfig, catalog: &MixtureConfig) -> Result<Sequences> {
    if cfg.min_len < MIN_INTERACTIONS || cfg.max_len < cfg.min_len {
        let why = format!(
            "is {}..={}; use {MIN_INTERACTIONS} ≤ min_len ≤ max_len",
            cfg.min_len, cfg.max_len
        );
        return Err(invalid("min_len..=max_len", why));
    }
    if ![cfg.stay, cfg.same_topic, cfg.switch]
        .iter()
        .all(|p| (0.0..=1.0).contains(p))
    {
        return Err(invalid(
            "stay / same_topic / switch",
            "must be probabilities in [0, 1]",
        ));
    }
    if cfg.users == 0 || catalog.n == 0 {
        return Err(Error::Empty {
            what: "users or catalog",
        });
    }
    let labels = mixture_labels(catalog);
    let subs = catalog.subtopics.max(1);
    let mut chains: Vec<Vec<u32>> = vec![Vec::new(); catalog.topics.max(1) * subs];
    for (row, &(t, s)) in labels.iter().enumerate() {
        chains[t as usize * subs + s as usize].push(row as u32);
    }
    // Each chain follows the catalog's first coordinate (its widest axis):
    // the next item is a content neighbour in one direction. Or a seeded
    // order.
    if !cfg.content_order {
        let keys = crate::synthetic::integers(catalog.n, u32::MAX, cfg.seed ^ 0x5eed);
        for c in &mut chains {
            c.sort_by_key(|&r| (keys[r as usize], r));
        }
    } else if catalog.dim > 0 {
        let x = hierarchical_mixture(catalog);
        let key = |r: u32| x[r as usize * catalog.dim];
        for c in &mut chains {
            c.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        }
    }
    // Entry points by popularity: each non-empty chain weighted by its size.
    let live: Vec<usize> = (0..chains.len())
        .filter(|&c| !chains[c].is_empty())
        .collect();
    let mut cum = Vec::with_capacity(live.len());
    let mut acc = 0.0;
    for &c in &live {
        acc += chains[c].len() as f64;
        cum.push(acc);
    }
    let mut seqs = Sequences::new();
    let mut items = Vec::with_capacity(cfg.max_len);
    for u in 0..cfg.users {
        let mut rng = Rng::new(cfg.seed, 1 + u as u64);
        let len = cfg.min_len + rng.below(cfg.max_len - cfg.min_len + 1);
        let pick = |rng: &mut Rng| {
            live[cum
                .partition_point(|&w| w <= rng.next_f64() * acc)
                .min(live.len() - 1)]
        };
        let enter = |rng: &mut Rng, c: usize| {
            // Skewed entry: the square of a uniform favours early items.
            let f = rng.next_f64();
            ((f * f) * chains[c].len() as f64) as usize % chains[c].len()
        };
        // Two interests: (chain, position); `now` is the last item's.
        let mut interests = [(0, 0); 2];
        for it in &mut interests {
            let c = pick(&mut rng);
            *it = (c, enter(&mut rng, c));
        }
        let (mut now, mut fresh) = (0, [false, true]);
        items.clear();
        for step in 0..len {
            if step > 0 {
                if rng.next_f64() < cfg.switch {
                    now = 1 - now;
                }
                let (chain, pos) = &mut interests[now];
                if fresh[now] {
                    // The second interest's first item: where it entered.
                    fresh[now] = false;
                } else if rng.next_f64() < cfg.stay {
                    *pos = (*pos + 1 + rng.below(3)) % chains[*chain].len();
                } else {
                    let topic = *chain / subs;
                    let same: Vec<usize> = (topic * subs..(topic + 1) * subs)
                        .filter(|&c| c != *chain && !chains[c].is_empty())
                        .collect();
                    *chain = if rng.next_f64() < cfg.same_topic && !same.is_empty() {
                        same[rng.below(same.len())]
                    } else {
                        pick(&mut rng)
                    };
                    *pos = enter(&mut rng, *chain);
                }
            }
            let (chain, pos) = interests[now];
            items.push(chains[chain][pos]);
        }
        seqs.push(format!("u{u}"), &items);
    }
    Ok(seqs)
}

fn parse_error(what: &'static str, line: usize, reason: impl Into<String>) -> Error {
    Error::Parse {
        what,
        line,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> ItemIds {
        ItemIds::new((0..n).map(|i| format!("i{i}")).collect()).unwrap()
    }

    #[test]
    fn recbole_header_finds_columns_by_name() {
        let text = "timestamp:float\titem_id:token\tuser_id:token\n\
                    3\ti2\tu\n1\ti0\tu\n2\ti1\tu\n2\ti3\tu\n";
        let (s, r) = parse_interactions(text, &ids(4)).unwrap();
        assert!(r.header);
        // Equal times (i1, i3 at 2) keep file order.
        assert_eq!(s.items(0), &[0, 1, 3, 2]);
        let bad = "user_id:token\titem_id:token\n";
        assert!(matches!(
            parse_interactions(bad, &ids(4)),
            Err(Error::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let items = ids(3);
        for (text, line) in [
            ("u\ti0\t1\nu\ti1\n", 2),
            ("u\ti0\t1\nu\ti1\tNaN\n", 2),
            ("u\ti0\t1\nu\ti1\t2\nu\ti2\tinf\n", 3),
        ] {
            match parse_interactions(text, &items) {
                Err(Error::Parse { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_interactions("", &items),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            parse_interactions("u\tx\t1\nu\ty\t2\nu\tz\t3\n", &items),
            Err(Error::Empty { .. })
        ));
        assert!(ItemIds::new(vec!["a".into(), "b".into(), "a".into()]).is_err());
        assert!(ItemIds::new(vec!["a".into(), String::new()]).is_err());
        let dir = std::env::temp_dir().join(format!("semid-ids-{}", std::process::id()));
        std::fs::write(&dir, "a\nb\n\n\n").unwrap();
        assert_eq!(ItemIds::read(&dir).unwrap().len(), 2);
        std::fs::write(&dir, "a\n\nb\n").unwrap();
        // The error names the file, and inside it the line.
        let e = ItemIds::read(&dir).err().unwrap();
        assert!(
            matches!(&e, Error::File { path, .. } if *path == dir),
            "{e}"
        );
        assert!(matches!(e.root(), Error::Parse { line: 2, .. }), "{e}");
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn unknown_items_and_short_users_are_counted() {
        let text = "user\titem\ttime\n\
                    a\ti0\t1\na\tzz\t2\na\ti1\t3\na\ti2\t4\n\nb\ti0\t1\nb\ti1\t2\n";
        let (s, r) = parse_interactions(text, &ids(3)).unwrap();
        assert_eq!(
            r,
            LoadReport {
                lines: 8,
                header: true,
                interactions: 3,
                unknown_items: 1,
                short_users: 1,
                users: 1,
            }
        );
        assert_eq!((s.user(0), s.items(0)), ("a", &[0u32, 1, 2][..]));
    }

    #[test]
    fn leave_one_out_caps_histories() {
        let mut s = Sequences::new();
        s.push("a", &[0, 1, 2, 3, 4, 5]);
        s.push("b", &[7, 8, 9]);
        let split = LeaveOneOut::new(s, 2).unwrap();
        let train: Vec<_> = split
            .train()
            .map(|e| (e.user, e.history.to_vec(), e.target))
            .collect();
        assert_eq!(
            train,
            vec![(0, vec![0], 1), (0, vec![0, 1], 2), (0, vec![1, 2], 3),]
        );
        let valid: Vec<_> = split
            .valid()
            .map(|e| (e.history.to_vec(), e.target))
            .collect();
        assert_eq!(valid, vec![(vec![2, 3], 4), (vec![7], 8)]);
        let test: Vec<_> = split
            .test()
            .map(|e| (e.history.to_vec(), e.target))
            .collect();
        assert_eq!(test, vec![(vec![3, 4], 5), (vec![7, 8], 9)]);
        let mut short = Sequences::new();
        short.push("c", &[1, 2]);
        assert!(LeaveOneOut::new(short, 5).is_err());
        assert!(LeaveOneOut::new(Sequences::new(), 5).is_err());
    }

    /// 2 000 × 8, 20 topics: the catalog of the synthetic-sequence tests.
    fn small_catalog() -> MixtureConfig {
        MixtureConfig {
            n: 2_000,
            dim: 8,
            topics: 20,
            ..MixtureConfig::default()
        }
    }

    #[test]
    fn synthetic_sequences_are_seeded_and_sequential() {
        let catalog = small_catalog();
        let cfg = SequenceConfig {
            users: 200,
            switch: 0.0,
            ..SequenceConfig::default()
        };
        let a = synthetic_sequences(&cfg, &catalog).unwrap();
        assert_eq!(a, synthetic_sequences(&cfg, &catalog).unwrap());
        assert_eq!(a.len(), 200);
        let labels = mixture_labels(&catalog);
        let (mut same, mut steps) = (0, 0);
        for u in 0..a.len() {
            let s = a.items(u);
            assert!((5..=20).contains(&s.len()));
            assert!(s.iter().all(|&i| (i as usize) < catalog.n));
            for w in s.windows(2) {
                steps += 1;
                same += usize::from(labels[w[0] as usize] == labels[w[1] as usize]);
            }
        }
        // One interest (switch = 0): most steps stay in the sub-topic
        // (stay = 0.75, plus returns).
        let share = same as f64 / steps as f64;
        assert!((0.7..0.9).contains(&share), "{share}");
        let bad = SequenceConfig {
            min_len: 2,
            ..cfg.clone()
        };
        assert!(synthetic_sequences(&bad, &catalog).is_err());
        let bad = SequenceConfig {
            switch: 1.5,
            ..cfg.clone()
        };
        assert!(synthetic_sequences(&bad, &catalog).is_err());
    }

    #[test]
    fn content_order_follows_the_widest_axis() {
        let catalog = small_catalog();
        let x = hierarchical_mixture(&catalog);
        let labels = mixture_labels(&catalog);
        // Share of same-sub-topic steps that move up the first coordinate.
        let up = |content_order: bool| {
            let cfg = SequenceConfig {
                users: 300,
                switch: 0.0,
                content_order,
                ..SequenceConfig::default()
            };
            let a = synthetic_sequences(&cfg, &catalog).unwrap();
            let (mut up, mut n) = (0, 0);
            for u in 0..a.len() {
                for w in a.items(u).windows(2) {
                    let (p, q) = (w[0] as usize, w[1] as usize);
                    if labels[p] == labels[q] {
                        n += 1;
                        up += usize::from(x[q * 8] > x[p * 8]);
                    }
                }
            }
            up as f64 / n as f64
        };
        // Along the axis, only wrap-arounds go down; a seeded order is a
        // coin flip.
        let (along, seeded) = (up(true), up(false));
        assert!(along > 0.75, "{along}");
        assert!((0.3..0.7).contains(&seeded), "{seeded}");
    }

    #[test]
    fn two_interests_interleave() {
        let catalog = small_catalog();
        let cfg = SequenceConfig {
            users: 300,
            switch: 0.6,
            ..SequenceConfig::default()
        };
        let a = synthetic_sequences(&cfg, &catalog).unwrap();
        let labels = mixture_labels(&catalog);
        // Share of item pairs `lag` apart in one sub-topic.
        let share = |lag: usize| {
            let (mut same, mut n) = (0, 0);
            for u in 0..a.len() {
                for w in a.items(u).windows(lag + 1) {
                    n += 1;
                    same += usize::from(labels[w[0] as usize] == labels[w[lag] as usize]);
                }
            }
            same as f64 / n as f64
        };
        // switch = 0.6: the item two back shares the sub-topic more often
        // than the last one (0.4 stay with the last interest, 0.52 return).
        let (one, two) = (share(1), share(2));
        assert!(two > one + 0.05, "lag 1: {one}, lag 2: {two}");
        assert!((0.2..0.5).contains(&one), "{one}");
    }
}
