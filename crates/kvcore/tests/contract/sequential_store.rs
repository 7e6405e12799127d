//! The store as a sequential object, for stateright's
//! [`LinearizabilityTester`](stateright::semantics::LinearizabilityTester):
//! get, upsert, compare-and-swap and remove on a few keys, and a store-wide
//! revision. kvcore's linearizability tests check recorded histories of the
//! store against it, and kvserver's cluster tests (which include this file
//! by path) histories of kvservers on etcd.

use std::collections::BTreeMap;

use stateright::semantics::SequentialSpec;

/// A key, by index into the test's own list of key names.
pub type Key = usize;

/// A value, unique per write in a history, so a read names the write it saw.
pub type Value = u32;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Get(Key),
    Upsert(Key, Value),
    CompareAndSwap(Key, u64, Value),
    Remove(Key),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ret {
    /// The value and version read, if any.
    Got(Option<(Value, u64)>),
    /// The version written and whether the key was created.
    Upserted(u64, bool),
    /// The version written, or the current version the swap found.
    Swapped(Result<u64, Option<u64>>),
    /// Whether a key was removed, and the removal's revision when the
    /// interface tells it (kvcore's `remove` does; an HTTP DELETE answers
    /// 204 alone).
    Removed(bool, Option<u64>),
}

impl Ret {
    /// The key's version this answer tells its caller, if any: what a
    /// client would expect in its next compare-and-swap of the key.
    pub fn version_seen(&self) -> Option<u64> {
        match *self {
            Ret::Got(Some((_, version)))
            | Ret::Upserted(version, _)
            | Ret::Swapped(Ok(version) | Err(Some(version))) => Some(version),
            _ => None,
        }
    }
}

/// How the versions in a history are numbered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Revisions {
    /// Every write takes the next number: one store. (Insisting on the
    /// exact number also keeps the checker's search small: each write has
    /// exactly one place in any linearization.)
    Consecutive,
    /// A write's version is above every earlier one, with gaps: etcd's
    /// revision is cluster-wide, and other keys and prefixes take numbers.
    Increasing,
}

#[derive(Clone, Debug)]
pub struct Model {
    revisions: Revisions,
    revision: u64,
    keys: BTreeMap<Key, (Value, u64)>,
}

impl Model {
    /// An empty store, below every version the history holds.
    pub fn new(revisions: Revisions) -> Model {
        Model {
            revisions,
            revision: 0,
            keys: BTreeMap::new(),
        }
    }

    /// Whether a write may have taken `version` now.
    fn take(&mut self, version: u64) -> bool {
        let fits = match self.revisions {
            Revisions::Consecutive => version == self.revision + 1,
            Revisions::Increasing => version > self.revision,
        };
        self.revision = version;
        fits
    }

    fn version_of(&self, key: Key) -> Option<u64> {
        self.keys.get(&key).map(|&(_, version)| version)
    }
}

impl SequentialSpec for Model {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match *op {
            Op::Get(key) => Ret::Got(self.keys.get(&key).copied()),
            Op::Upsert(key, value) => {
                self.revision += 1;
                let created = self.keys.insert(key, (value, self.revision)).is_none();
                Ret::Upserted(self.revision, created)
            }
            Op::CompareAndSwap(key, expected, value) => match self.version_of(key) {
                Some(version) if version == expected => {
                    self.revision += 1;
                    self.keys.insert(key, (value, self.revision));
                    Ret::Swapped(Ok(self.revision))
                }
                current => Ret::Swapped(Err(current)),
            },
            Op::Remove(key) => match self.keys.remove(&key) {
                Some(_) => {
                    self.revision += 1;
                    Ret::Removed(true, Some(self.revision))
                }
                None => Ret::Removed(false, None),
            },
        }
    }

    fn is_valid_step(&mut self, op: &Op, ret: &Ret) -> bool {
        match (*op, ret) {
            (Op::Get(key), Ret::Got(seen)) => self.keys.get(&key).copied() == *seen,
            (Op::Upsert(key, value), &Ret::Upserted(version, created)) => {
                if created == self.keys.contains_key(&key) || !self.take(version) {
                    return false;
                }
                self.keys.insert(key, (value, version));
                true
            }
            (Op::CompareAndSwap(key, expected, value), &Ret::Swapped(Ok(version))) => {
                if self.version_of(key) != Some(expected) || !self.take(version) {
                    return false;
                }
                self.keys.insert(key, (value, version));
                true
            }
            (Op::CompareAndSwap(key, expected, _), &Ret::Swapped(Err(seen))) => {
                let current = self.version_of(key);
                current != Some(expected) && seen == current
            }
            (Op::Remove(key), &Ret::Removed(true, version)) => {
                // A removal whose revision is not told still took one,
                // which only an `Increasing` history can leave unknown.
                let fits = match version {
                    Some(version) => self.take(version),
                    None => self.revisions == Revisions::Increasing,
                };
                self.keys.remove(&key).is_some() && fits
            }
            (Op::Remove(key), Ret::Removed(false, None)) => !self.keys.contains_key(&key),
            _ => false,
        }
    }
}
