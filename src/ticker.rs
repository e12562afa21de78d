//! The epoch ticker: interrupts running guests at their deadlines.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::engine::TICK;

/// Advances the engine's epoch every `TICK` while calls run. It keeps
/// ticking through short pauses and parks only after `PARK_AFTER` without
/// calls: waking it at every call start would run it on another core during
/// the call, where each copy-on-write fault of the guest then waits for a
/// TLB-shootdown interrupt to that core (measured in BENCHMARKS.md).
pub struct Ticker {
    state: Mutex<TickState>,
    wake: Condvar,
}

struct TickState {
    active: usize,
    parked: bool,
}

const PARK_AFTER: Duration = Duration::from_secs(1);

pub struct ActiveGuard(Arc<Ticker>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().active -= 1;
    }
}

impl Ticker {
    pub fn start(engine: Engine) -> Arc<Self> {
        let ticker =
            Arc::new(Ticker { state: Mutex::new(TickState { active: 0, parked: false }), wake: Condvar::new() });
        let weak: Weak<Ticker> = Arc::downgrade(&ticker);
        std::thread::Builder::new()
            .name("wassette-epoch".into())
            .spawn(move || {
                let mut last_active = Instant::now();
                while let Some(t) = weak.upgrade() {
                    let mut state = t.state.lock().unwrap();
                    if state.active > 0 {
                        last_active = Instant::now();
                        engine.increment_epoch();
                    } else if last_active.elapsed() >= PARK_AFTER {
                        state.parked = true;
                        // Woken by `enter`, or each second to notice a dropped engine.
                        state = t.wake.wait_timeout_while(state, PARK_AFTER, |s| s.active == 0).unwrap().0;
                        state.parked = false;
                        last_active = Instant::now();
                    }
                    drop(state);
                    drop(t);
                    // The first tick of a call comes after at most `TICK`.
                    std::thread::sleep(TICK);
                }
            })
            .expect("spawn epoch thread");
        ticker
    }

    pub fn enter(self: &Arc<Self>) -> ActiveGuard {
        let mut state = self.state.lock().unwrap();
        state.active += 1;
        if state.parked {
            self.wake.notify_one();
        }
        drop(state);
        ActiveGuard(self.clone())
    }
}
