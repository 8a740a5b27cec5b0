//! Tracks the resources of running executions so the node never runs more than it has.

use bacalhau_models::Resources;

/// Reserves and releases resources against the node's total.
#[derive(Debug, Clone)]
pub struct CapacityTracker {
    total: Resources,
    used: Resources,
}

impl CapacityTracker {
    /// A tracker for a node with `total` resources.
    pub fn new(total: Resources) -> Self {
        Self {
            total,
            used: Resources::default(),
        }
    }

    /// Reserves `need` if it fits in what is free.
    pub fn try_reserve(&mut self, need: &Resources) -> bool {
        let mut after = self.used.clone();
        after.add(need);
        if after.fits_in(&self.total) {
            self.used = after;
            true
        } else {
            false
        }
    }

    /// Gives back what [`CapacityTracker::try_reserve`] took.
    pub fn release(&mut self, need: &Resources) {
        self.used.subtract(need);
    }

    /// Whether `need` could ever run here.
    pub fn could_fit(&self, need: &Resources) -> bool {
        need.fits_in(&self.total)
    }

    /// What is free now.
    pub fn available(&self) -> Resources {
        let mut free = self.total.clone();
        free.subtract(&self.used);
        free
    }

    /// The node's total.
    pub fn total(&self) -> &Resources {
        &self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reserves_past_the_total() {
        let mut tracker = CapacityTracker::new(Resources {
            cpu: 1.0,
            memory: 100,
            ..Default::default()
        });
        let half = Resources {
            cpu: 0.5,
            memory: 50,
            ..Default::default()
        };
        assert!(tracker.try_reserve(&half));
        assert!(tracker.try_reserve(&half));
        assert!(!tracker.try_reserve(&half));
        tracker.release(&half);
        assert!(tracker.try_reserve(&half));
        assert_eq!(tracker.available().cpu, 0.0);
    }
}
