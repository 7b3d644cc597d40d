//! Bounded selection of the `k` smallest values.

/// Keeps the `cap` smallest `(value, id)` pairs pushed so far, sorted
/// ascending by value then id. Push ids in ascending order and ties resolve
/// to the lowest id; a value equal to the current worst is rejected when full.
#[derive(Clone, Debug, Default)]
pub(crate) struct TopK {
    cap: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    pub(crate) fn new(cap: usize) -> Self {
        TopK {
            cap,
            items: Vec::with_capacity(cap + 1),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    #[inline]
    pub(crate) fn push(&mut self, v: f32, id: u32) {
        if self.items.len() == self.cap {
            match self.items.last() {
                Some(&(w, _)) if v < w => {}
                _ => return,
            }
            self.items.pop();
        }
        // Insert after every entry with value <= v (ids arrive ascending).
        let pos = self.items.partition_point(|&(w, _)| w <= v);
        self.items.insert(pos, (v, id));
    }

    /// Worst value kept when full, `+∞` otherwise.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        if self.items.len() == self.cap {
            self.items.last().map_or(f32::INFINITY, |&(w, _)| w)
        } else {
            f32::INFINITY
        }
    }

    pub(crate) fn items(&self) -> &[(f32, u32)] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_smallest_with_low_id_ties() {
        let mut t = TopK::new(3);
        for (i, v) in [5.0, 1.0, 3.0, 1.0, 0.5, 3.0, 9.0].iter().enumerate() {
            t.push(*v, i as u32);
        }
        assert_eq!(t.items(), &[(0.5, 4), (1.0, 1), (1.0, 3)]);
        assert_eq!(t.threshold(), 1.0);
    }
}
