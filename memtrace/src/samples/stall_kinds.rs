//! A value per stall kind, held behind a box made at the first stall: most processes never
//! stall, and the tables of processes (the collector's per interval, the model's for the whole
//! run) hold thousands of entries. Inline, six kinds made an entry ~900 bytes, and 10 000
//! processes in one interval grew a table by ~15 MB at once.
use memtrace_common::{STALL_KINDS, StallKind};

/// Values per `StallKind`, none until the first.
#[derive(Clone, Debug)]
pub struct StallKinds<T>(Option<Box<[Option<T>; STALL_KINDS]>>);

impl<T> Default for StallKinds<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> StallKinds<T> {
    /// The value of one kind, if any.
    pub fn get(&self, kind: StallKind) -> Option<&T> {
        self.0.as_ref()?[kind as usize].as_ref()
    }

    /// The value of one kind, made (with the box) when it is the first.
    pub fn get_or_default(&mut self, kind: StallKind) -> &mut T
    where
        T: Default,
    {
        self.0
            .get_or_insert_with(|| Box::new(std::array::from_fn(|_| None)))[kind as usize]
            .get_or_insert_with(T::default)
    }

    /// The kinds that have a value, in `StallKind::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (StallKind, &T)> {
        let values = self.0.iter().flat_map(|kinds| kinds.iter());
        StallKind::ALL
            .into_iter()
            .zip(values)
            .filter_map(|(kind, value)| Some((kind, value.as_ref()?)))
    }

    /// The same, taking the values.
    pub fn into_values(self) -> impl Iterator<Item = (StallKind, T)> {
        let values = self.0.into_iter().flat_map(|kinds| *kinds);
        StallKind::ALL
            .into_iter()
            .zip(values)
            .filter_map(|(kind, value)| Some((kind, value?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_allocated_before_the_first_stall() {
        let mut kinds = StallKinds::<u64>::default();
        assert_eq!(size_of::<StallKinds<[u64; 64]>>(), size_of::<usize>());
        assert!(kinds.0.is_none());
        assert_eq!(kinds.get(StallKind::Compaction), None);
        assert_eq!(kinds.iter().count(), 0);
        *kinds.get_or_default(StallKind::Compaction) += 3;
        *kinds.get_or_default(StallKind::Compaction) += 1;
        *kinds.get_or_default(StallKind::ALL[0]) += 2;
        assert_eq!(kinds.get(StallKind::Compaction), Some(&4));
        let seen: Vec<(StallKind, u64)> = kinds.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(
            seen,
            vec![(StallKind::ALL[0], 2), (StallKind::Compaction, 4)]
        );
        let taken: Vec<(StallKind, u64)> = kinds.into_values().collect();
        assert_eq!(taken, seen);
    }
}
