//! Iterating the registered names without a lock.

use core::fmt;

use crate::{Registry, ServingStatus, Storage, MAX_NAME};

/// The iterator returned by [`Registry::iter`]: walks the slots in use (not the whole
/// capacity), copying each live one out through its sequence lock.
pub struct Iter<'a, S: Storage> {
    registry: &'a Registry<S>,
    idx: usize,
}

impl<'a, S: Storage> Iter<'a, S> {
    pub(crate) fn new(registry: &'a Registry<S>) -> Self {
        Self { registry, idx: 0 }
    }
}

impl<S: Storage> fmt::Debug for Iter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("idx", &self.idx).finish()
    }
}

impl<S: Storage> Iterator for Iter<'_, S> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let slots = self.registry.storage().parts().slots;
        let high = self.registry.high_water().min(slots.len());
        while self.idx < high {
            let slot = &slots[self.idx];
            self.idx += 1;
            let mut name = [0; MAX_NAME];
            if let Some((len, status)) = slot.copy_out(&mut name) {
                return Some(Entry { name, len, status });
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.registry.capacity().saturating_sub(self.idx)))
    }
}

/// One registered name and its status, copied out of the registry by [`Registry::iter`].
#[derive(Clone)]
pub struct Entry {
    name: [u8; MAX_NAME],
    len: u8,
    status: ServingStatus,
}

impl Entry {
    /// The service name.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
    /// assert_eq!(registry.iter().next().unwrap().name(), "");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        // The bytes were a `&str` when stored and the sequence lock rules out torn copies, so
        // this never fails; an empty name is the safe answer if it somehow did.
        core::str::from_utf8(&self.name[..self.len as usize]).unwrap_or_default()
    }

    /// Its status.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// assert_eq!(registry.iter().next().unwrap().status(), ServingStatus::Serving);
    /// ```
    #[must_use]
    pub fn status(&self) -> ServingStatus {
        self.status
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name())
            .field("status", &self.status)
            .finish()
    }
}
