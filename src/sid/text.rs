//! Semantic IDs as text tokens, the way LLM-based recommenders (LC-Rec,
//! MiniOneRec, OpenOneRec) add them to a language model's vocabulary:
//! `<a_12><b_34><c_5><d_0>`, one token per ID position, the position named
//! by a letter.

use crate::error::{Error, Result, invalid};

/// How an ID is written as text: each position `l` as
/// `{open}{name_l}{sep}{code}{close}`, e.g. `<a_12>`.
///
/// ```
/// use semid::sid::TextFormat;
/// let f = TextFormat::new(4)?;
/// assert_eq!(f.format(&[12, 34, 5, 0])?, "<a_12><b_34><c_5><d_0>");
/// assert_eq!(f.parse("<a_12><b_34><c_5><d_0>")?, vec![12, 34, 5, 0]);
/// assert!(f.parse("<a_12><b_34><c_5>").is_err()); // 3 tokens of 4
/// assert!(f.parse("<a_12><b_34><c_5><e_0>").is_err()); // e is not position 4
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFormat {
    open: String,
    sep: String,
    close: String,
    names: Vec<String>,
}

impl TextFormat {
    /// LC-Rec's format for IDs of `id_len` tokens: `<a_…>`, `<b_…>`, … (at
    /// most 26 positions; name more with [`TextFormat::with_names`]).
    ///
    /// Errors: `id_len` of 0 or above 26.
    pub fn new(id_len: usize) -> Result<TextFormat> {
        if id_len == 0 || id_len > 26 {
            return Err(invalid(
                "id_len",
                format!("is {id_len}; letters name 1 to 26 positions (use with_names for more)"),
            ));
        }
        let names = (0..id_len)
            .map(|l| char::from(b'a' + l as u8).to_string())
            .collect();
        TextFormat::with_names("<", "_", ">", names)
    }

    /// A format with its own delimiters and position names, e.g.
    /// `("[", ":", "]", ["c0", "c1", "c2"])` for `[c0:12][c1:34][c2:5]`.
    ///
    /// Errors: an empty `open` or `close`, no names, an empty or repeated
    /// name, or a name or separator that holds a delimiter or a digit at a
    /// place that would make parsing ambiguous.
    pub fn with_names(
        open: &str,
        sep: &str,
        close: &str,
        names: Vec<String>,
    ) -> Result<TextFormat> {
        if open.is_empty() || close.is_empty() {
            return Err(invalid("open/close", "must not be empty"));
        }
        if names.is_empty() {
            return Err(Error::Empty {
                what: "position names",
            });
        }
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || names[..i].contains(n) {
                return Err(invalid(
                    "names",
                    format!("position {i} is {n:?}: names must be non-empty and distinct"),
                ));
            }
            if sep.is_empty() && n.chars().any(|c| c.is_ascii_digit()) {
                return Err(invalid(
                    "names",
                    format!(
                        "{n:?} holds a digit; without a separator the code starts at the first digit"
                    ),
                ));
            }
            if n.contains(open) || n.contains(close) || (!sep.is_empty() && n.contains(sep)) {
                return Err(invalid(
                    "names",
                    format!("{n:?} holds a delimiter or the separator"),
                ));
            }
        }
        if sep.chars().any(|c| c.is_ascii_digit()) || sep.contains(close) || sep.contains(open) {
            return Err(invalid(
                "sep",
                format!("{sep:?} holds a digit or a delimiter"),
            ));
        }
        Ok(TextFormat {
            open: open.to_string(),
            sep: sep.to_string(),
            close: close.to_string(),
            names,
        })
    }

    /// Tokens per ID.
    #[must_use]
    pub fn id_len(&self) -> usize {
        self.names.len()
    }

    /// The text token of `code` at position `level`, e.g. `<b_34>`.
    ///
    /// Errors: `level` beyond the ID length.
    pub fn token(&self, level: usize, code: u16) -> Result<String> {
        let name = self.names.get(level).ok_or_else(|| {
            invalid(
                "level",
                format!("is {level}; IDs have {} positions", self.names.len()),
            )
        })?;
        Ok(format!(
            "{}{name}{}{code}{}",
            self.open, self.sep, self.close
        ))
    }

    /// Every token of every position, position after position: what a
    /// language model's vocabulary gains (`codebook_sizes[l]` tokens at
    /// position `l`, as [`Trie::codebook_sizes`](crate::sid::Trie::codebook_sizes)).
    ///
    /// Errors: as many sizes as positions is required; a size above 65 536.
    pub fn vocabulary(&self, codebook_sizes: &[usize]) -> Result<Vec<String>> {
        crate::error::expect_len(
            "codebook sizes (one per ID position)",
            self.names.len(),
            codebook_sizes.len(),
        )?;
        crate::data::check_vocab("codebook_sizes", codebook_sizes, 1)?;
        let mut out = Vec::with_capacity(codebook_sizes.iter().sum());
        for (l, &k) in codebook_sizes.iter().enumerate() {
            for c in 0..k {
                out.push(self.token(l, c as u16)?);
            }
        }
        Ok(out)
    }

    /// The text of `id`.
    ///
    /// Errors: an ID of another length.
    pub fn format(&self, id: &[u16]) -> Result<String> {
        crate::error::expect_len("ID tokens", self.names.len(), id.len())?;
        let mut s = String::with_capacity(id.len() * 8);
        for (l, &c) in id.iter().enumerate() {
            s.push_str(&self.open);
            s.push_str(&self.names[l]);
            s.push_str(&self.sep);
            s.push_str(&c.to_string());
            s.push_str(&self.close);
        }
        Ok(s)
    }

    /// The ID written in `text` (surrounding white space is ignored): every
    /// position once, in order.
    ///
    /// Errors ([`Error::SidText`], saying where): text that is not a run of
    /// tokens, a name that is not the next position's (out of order,
    /// unknown, or beyond the ID length), a code that is not a number below
    /// 65 536, too few tokens.
    pub fn parse(&self, text: &str) -> Result<Vec<u16>> {
        let bad = |reason: String| Error::SidText {
            text: text.chars().take(80).collect(),
            reason,
        };
        let mut rest = text.trim();
        let mut id = Vec::with_capacity(self.names.len());
        while !rest.is_empty() {
            let l = id.len();
            let body = rest.strip_prefix(self.open.as_str()).ok_or_else(|| {
                bad(format!(
                    "token {} does not start with {:?}",
                    l + 1,
                    self.open
                ))
            })?;
            let end = body
                .find(self.close.as_str())
                .ok_or_else(|| bad(format!("token {} has no closing {:?}", l + 1, self.close)))?;
            let (inner, after) = (&body[..end], &body[end + self.close.len()..]);
            // The name is everything before the separator (names hold
            // none), or before the digits when there is no separator.
            let split = if self.sep.is_empty() {
                inner.find(|c: char| c.is_ascii_digit())
            } else {
                inner.find(self.sep.as_str())
            };
            let (name, code) = match split {
                Some(i) => (&inner[..i], &inner[i + self.sep.len()..]),
                None => {
                    return Err(bad(format!(
                        "token {} {inner:?} has no {:?} before its code",
                        l + 1,
                        self.sep
                    )));
                }
            };
            match self.names.iter().position(|n| n == name) {
                Some(p) if p == l => {}
                Some(p) => {
                    return Err(bad(format!(
                        "token {} is position {name:?} ({}); expected {:?}",
                        l + 1,
                        p + 1,
                        self.names.get(l).map_or("the end", String::as_str)
                    )));
                }
                None if l >= self.names.len() => {
                    return Err(bad(format!(
                        "token {} ({name:?}) is beyond the ID length {}",
                        l + 1,
                        self.names.len()
                    )));
                }
                None => {
                    return Err(bad(format!(
                        "token {} names position {name:?}, which IDs of {} positions ({}) do not have; expected {:?}",
                        l + 1,
                        self.names.len(),
                        self.names.join(", "),
                        self.names[l]
                    )));
                }
            }
            let code: u16 = code
                .parse()
                .ok()
                .filter(|_| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    bad(format!(
                        "token {} has code {code:?}, not a number below 65536",
                        l + 1
                    ))
                })?;
            id.push(code);
            rest = after;
        }
        if id.len() != self.names.len() {
            return Err(bad(format!(
                "{} tokens; IDs have {}",
                id.len(),
                self.names.len()
            )));
        }
        Ok(id)
    }
}
