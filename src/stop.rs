//! How a call is stopped from outside its guest: cancellation from another
//! thread, the deadline, the CPU-time budget. Shared by a call and the
//! linked calls it makes (`link.rs`), which stop with it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

use tokio::sync::Notify;

/// Lets another thread stop a running call.
#[derive(Default)]
pub struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    Deadline,
    Cancelled,
    CpuTime,
}

/// Why the epoch callback stopped the guest.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by the host")
    }
}

impl std::error::Error for Interrupted {}

/// CPU time a call has used since it started, summed over the threads that
/// ran it: a call started on one thread may be finished on another, and each
/// thread has its own CPU clock.
#[derive(Default)]
pub struct CpuClock {
    /// (used in the segments that ended, this thread's clock when the
    /// current segment began)
    state: Mutex<(Duration, Duration)>,
}

impl CpuClock {
    /// Runs `f` (which polls the call) as one segment on this thread.
    pub fn segment<T>(&self, f: impl FnOnce() -> T) -> T {
        self.state.lock().unwrap().1 = thread_cpu_time();
        let out = f();
        let mut state = self.state.lock().unwrap();
        let (before, began) = *state;
        state.0 = before + thread_cpu_time().saturating_sub(began);
        out
    }

    /// Used so far; called on the thread running the current segment.
    pub fn used(&self) -> Duration {
        let state = self.state.lock().unwrap();
        state.0 + thread_cpu_time().saturating_sub(state.1)
    }
}

/// CPU time consumed by the current thread (see `CpuClock`).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The budget a call has run out of at an epoch tick, if any: the caller's
/// deadline, then its CPU time (`used` of `budget`).
pub fn overdue(deadline: Instant, cpu: Option<(Duration, Duration)>) -> Option<Stop> {
    if Instant::now() >= deadline {
        Some(Stop::Deadline)
    } else if cpu.is_some_and(|(used, budget)| used >= budget) {
        Some(Stop::CpuTime)
    } else {
        None
    }
}

/// What an epoch callback answers: interrupted for `why` (kept in `slot`
/// for the outcome), else go on, yielding so timers and cancellation are
/// seen even while guest code computes.
pub fn interrupt_if(why: Option<Stop>, slot: &Mutex<Option<Stop>>) -> wasmtime::Result<UpdateDeadline> {
    match why {
        Some(w) => {
            *slot.lock().unwrap() = Some(w);
            Err(wasmtime::Error::new(Interrupted))
        }
        None => Ok(UpdateDeadline::Yield(1)),
    }
}
