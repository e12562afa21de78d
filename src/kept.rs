//! An instance kept across calls (a stateful component): its store and
//! instance between calls, handed to one call at a time (`Turn`). A call
//! that does not end with a returned value discards it (`call.rs`).

use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::sandbox::Host;

/// A stateful instance between its calls: its store (sandbox, memory) and
/// the instance in it.
pub struct Live {
    pub store: Store<Host>,
    pub instance: Instance,
}

enum Slot {
    /// Not instantiated yet, or discarded after a call that did not end well.
    Empty,
    Idle(Box<Live>),
    Busy,
    Closed,
}

/// An instance kept across calls. It serves one call at a time: a call
/// waits for the one before it (within its own deadline). A call that does
/// not end with a returned value (a trap, a timeout, a cancellation, an
/// exceeded budget) may leave the instance half-way: it is discarded, and
/// the next call starts a new one.
pub struct Kept {
    slot: Mutex<Slot>,
    free: tokio::sync::Notify,
}

impl Default for Kept {
    fn default() -> Self {
        Kept { slot: Mutex::new(Slot::Empty), free: tokio::sync::Notify::new() }
    }
}

impl Kept {
    /// Whether an instance is alive in it (idle or in a call).
    pub fn live(&self) -> bool {
        matches!(*self.slot.lock().unwrap(), Slot::Idle(_) | Slot::Busy)
    }

    /// Drops the instance (now, or when its call ends); calls after this fail.
    pub fn close(&self) {
        let old = std::mem::replace(&mut *self.slot.lock().unwrap(), Slot::Closed);
        drop(old);
        self.free.notify_waiters();
    }

    /// Waits for the instance to be free; None when there is none yet.
    pub async fn acquire(self: &Arc<Self>) -> Result<(Turn, Option<Box<Live>>), String> {
        loop {
            let notified = self.free.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut slot = self.slot.lock().unwrap();
                match std::mem::replace(&mut *slot, Slot::Busy) {
                    Slot::Empty => return Ok((Turn(Some(self.clone())), None)),
                    Slot::Idle(live) => return Ok((Turn(Some(self.clone())), Some(live))),
                    Slot::Closed => {
                        *slot = Slot::Closed;
                        return Err("the instance was closed".into());
                    }
                    Slot::Busy => {}
                }
            }
            notified.await;
        }
    }
}

/// A call's turn on a kept instance: gives the instance back (or, dropped
/// unused, discards it) and lets the next call in.
pub struct Turn(pub Option<Arc<Kept>>);

impl Turn {
    pub fn end(mut self, live: Option<Box<Live>>) {
        if let Some(kept) = self.0.take() {
            let old = {
                let mut slot = kept.slot.lock().unwrap();
                match (&*slot, live) {
                    (Slot::Closed, live) => live.map(Slot::Idle), // closed meanwhile: dropped
                    (_, Some(live)) => Some(std::mem::replace(&mut *slot, Slot::Idle(live))),
                    (_, None) => Some(std::mem::replace(&mut *slot, Slot::Empty)),
                }
            };
            drop(old); // outside the lock: dropping a store frees its memory
            kept.free.notify_one();
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.0.is_some() {
            Turn(self.0.take()).end(None);
        }
    }
}
