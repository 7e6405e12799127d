//! The lower bound of each block of a shard's ordered index, stored back to
//! back in one buffer: a search of the directory touches a few contiguous
//! cache lines instead of one allocation per bound.

/// Sorted bounds; the first is always empty (below every key).
pub(super) struct Directory {
    /// The bounds' bytes, one after the other.
    bytes: Vec<u8>,
    /// `ends[i]`: where bound `i` ends in `bytes` (it starts where `i - 1`
    /// ends).
    ends: Vec<usize>,
    /// `leads[i]`: bound `i`'s first 16 bytes (see [`lead`]), which decide
    /// most comparisons of a search without reading `bytes`.
    leads: Vec<u128>,
}

impl Directory {
    pub(super) fn new() -> Directory {
        Directory {
            bytes: Vec::new(),
            ends: vec![0],
            leads: vec![0],
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn get(&self, i: usize) -> &[u8] {
        &self.bytes[self.start(i)..self.ends[i]]
    }

    /// The last bound at or below `key`: the block whose range holds it.
    pub(super) fn route(&self, key: &[u8]) -> usize {
        // The first bound is empty, so at least one is <= key.
        let lead_of_key = lead(key);
        let (mut lo, mut hi) = (1, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at_or_below = match self.leads[mid].cmp(&lead_of_key) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => self.get(mid) <= key,
            };
            if at_or_below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - 1
    }

    /// Makes `bound` the `i`th bound (`i >= 1`), shifting those after it.
    pub(super) fn insert(&mut self, i: usize, bound: &[u8]) {
        debug_assert!(i >= 1, "the first bound stays empty");
        let start = self.start(i);
        self.bytes.splice(start..start, bound.iter().copied());
        self.ends.insert(i, start);
        self.leads.insert(i, lead(bound));
        for end in &mut self.ends[i..] {
            *end += bound.len();
        }
    }

    /// Removes the `i`th bound (`i >= 1`).
    pub(super) fn remove(&mut self, i: usize) {
        debug_assert!(i >= 1, "the first bound stays empty");
        let (start, end) = (self.start(i), self.ends[i]);
        self.bytes.drain(start..end);
        self.ends.remove(i);
        self.leads.remove(i);
        for e in &mut self.ends[i..] {
            *e -= end - start;
        }
    }

    #[inline]
    fn start(&self, i: usize) -> usize {
        match i {
            0 => 0,
            _ => self.ends[i - 1],
        }
    }
}

/// The first 16 bytes of `key`, big-endian, zero where the key is shorter:
/// a smaller lead means a smaller key; equal leads decide nothing.
#[inline]
pub(super) fn lead(key: &[u8]) -> u128 {
    if let Some(first) = key.first_chunk::<16>() {
        return u128::from_be_bytes(*first);
    }
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(bytes)
}
