//! Egress quotas of one call: bytes sent, bytes received and requests made,
//! counted by the network gate as they pass (HTTP on the wire, raw sockets
//! through their streams and datagrams) and refused before a budget would
//! be exceeded. The first budget exceeded stops the call (`call.rs`), so a
//! guest that ignores the error it gets cannot go on some other way.
//!
//! Pure counting, no I/O: the streams ask `take` before they let bytes
//! through and keep the answer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::Notify;

use crate::policy::{Counts, EgressLimit};

/// What passes the gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flow {
    Sent,
    Received,
    Request,
}

/// The budget a call exceeded: what the tool error and the audit record say.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QuotaHit {
    /// The policy field that set the limit.
    pub limit: String,
    /// Its value as the policy states it.
    pub value: u64,
    pub per: String,
    pub counts: Counts,
    pub message: String,
}

#[derive(Default)]
struct Used {
    sent: u64,
    received: u64,
    requests: u64,
}

/// The budgets of one call and what it used of them, shared by every
/// connection and stream of the call. An instance kept across calls
/// (`call.rs`) renews them for each call: a socket it keeps open counts
/// into the call that is running.
#[derive(Default)]
pub struct Quota {
    state: Mutex<State>,
    /// Whether there are budgets: read on every write without the lock.
    limited: AtomicBool,
    notify: Notify,
}

#[derive(Default)]
struct State {
    limits: Vec<EgressLimit>,
    used: Used,
    hit: Option<QuotaHit>,
}

fn covers(counts: Counts, flow: Flow) -> bool {
    matches!(
        (counts, flow),
        (Counts::Sent | Counts::Bytes, Flow::Sent)
            | (Counts::Received | Counts::Bytes, Flow::Received)
            | (Counts::Requests, Flow::Request)
    )
}

fn unit(counts: Counts) -> &'static str {
    match counts {
        Counts::Sent => "bytes sent",
        Counts::Received => "bytes received",
        Counts::Bytes => "bytes",
        Counts::Requests => "requests",
    }
}

impl Used {
    fn of(&self, counts: Counts) -> u64 {
        match counts {
            Counts::Sent => self.sent,
            Counts::Received => self.received,
            Counts::Bytes => self.sent + self.received,
            Counts::Requests => self.requests,
        }
    }

    fn add(&mut self, flow: Flow, n: u64) {
        let counter = match flow {
            Flow::Sent => &mut self.sent,
            Flow::Received => &mut self.received,
            Flow::Request => &mut self.requests,
        };
        *counter += n;
    }
}

impl Quota {
    pub fn new(limits: &[EgressLimit]) -> Self {
        let quota = Quota::default();
        quota.renew(limits);
        quota
    }

    /// Starts over with these budgets, nothing used (the next call of a
    /// kept instance).
    pub fn renew(&self, limits: &[EgressLimit]) {
        let mut state = self.state.lock().unwrap();
        *state = State { limits: limits.to_vec(), ..State::default() };
        self.limited.store(!limits.is_empty(), Ordering::Release);
    }

    /// Whether anything is counted at all (most calls: no).
    pub fn limited(&self) -> bool {
        self.limited.load(Ordering::Acquire)
    }

    /// Lets `n` units of `flow` through if every budget has room, and
    /// counts them; otherwise the call's quota is hit (once: the first
    /// budget exceeded is the one reported) and the message is returned.
    /// Once hit, nothing more passes.
    pub fn take(&self, flow: Flow, n: u64) -> Result<(), String> {
        if !self.limited() {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap();
        if let Some(hit) = &state.hit {
            return Err(hit.message.clone());
        }
        let over = state
            .limits
            .iter()
            .find(|l| covers(l.counts, flow) && state.used.of(l.counts).saturating_add(n) > l.max)
            .cloned();
        match over {
            None => {
                state.used.add(flow, n);
                Ok(())
            }
            Some(limit) => {
                let hit = exceeded(&limit);
                let message = hit.message.clone();
                state.hit = Some(hit);
                drop(state);
                self.notify.notify_waiters();
                Err(message)
            }
        }
    }

    /// Room left for `flow` under every budget that counts it.
    pub fn room(&self, flow: Flow) -> u64 {
        let state = self.state.lock().unwrap();
        state
            .limits
            .iter()
            .filter(|l| covers(l.counts, flow))
            .map(|l| l.max.saturating_sub(state.used.of(l.counts)))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The budget the call exceeded, if it did.
    pub fn hit(&self) -> Option<QuotaHit> {
        if !self.limited() {
            return None;
        }
        self.state.lock().unwrap().hit.clone()
    }

    /// Resolves once a budget has been exceeded (never, without budgets).
    pub async fn wait(&self) {
        if !self.limited() {
            return std::future::pending().await;
        }
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.hit().is_some() {
                return;
            }
            notified.await;
        }
    }
}

fn exceeded(limit: &EgressLimit) -> QuotaHit {
    QuotaHit {
        limit: limit.origin.clone(),
        value: limit.value,
        per: limit.per.clone(),
        counts: limit.counts,
        message: format!(
            "egress quota: {} {} per {} exceeded (policy {})",
            limit.value,
            unit(limit.counts),
            limit.per,
            limit.origin
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(counts: Counts, max: u64, per: &str, origin: &str) -> EgressLimit {
        EgressLimit { counts, max, value: max, per: per.into(), origin: origin.into() }
    }

    #[test]
    fn without_limits_everything_passes_uncounted() {
        let quota = Quota::new(&[]);
        assert!(!quota.limited());
        assert!(quota.take(Flow::Received, u64::MAX).is_ok());
        assert_eq!(quota.room(Flow::Sent), u64::MAX);
        assert!(quota.hit().is_none());
    }

    #[test]
    fn a_budget_is_used_up_exactly_and_then_refused() {
        let received = "network.limits.bytes_received_per_call";
        let quota = Quota::new(&[limit(Counts::Received, 10, "call", received)]);
        assert!(quota.take(Flow::Received, 6).is_ok());
        assert!(quota.take(Flow::Sent, 1000).is_ok(), "sent bytes are not received bytes");
        assert_eq!(quota.room(Flow::Received), 4);
        assert!(quota.take(Flow::Received, 4).is_ok(), "the limit itself may be reached");
        let err = quota.take(Flow::Received, 1).unwrap_err();
        assert_eq!(err, format!("egress quota: 10 bytes received per call exceeded (policy {received})"));
        let hit = quota.hit().unwrap();
        assert_eq!((hit.limit.as_str(), hit.value, hit.counts), (received, 10, Counts::Received));
        // Once hit, nothing passes any more, whatever it is.
        assert!(quota.take(Flow::Sent, 1).is_err());
    }

    #[test]
    fn bytes_count_both_ways_and_the_first_budget_exceeded_is_reported() {
        let mut minute = limit(Counts::Bytes, 100, "minute", "network.limits.bytes_per_minute");
        minute.value = 5000; // what is left of the window is what counts
        let quota = Quota::new(&[limit(Counts::Sent, 80, "call", "network.limits.bytes_sent_per_call"), minute]);
        assert!(quota.take(Flow::Sent, 60).is_ok());
        assert_eq!(quota.room(Flow::Sent), 20);
        assert_eq!(quota.room(Flow::Received), 40);
        assert!(quota.take(Flow::Received, 40).is_ok());
        let err = quota.take(Flow::Sent, 1).unwrap_err();
        assert!(err.starts_with("egress quota: 5000 bytes per minute exceeded"), "{err}");
        assert_eq!(quota.hit().unwrap().per, "minute");
    }

    #[test]
    fn requests_are_counted_one_by_one() {
        let quota = Quota::new(&[limit(Counts::Requests, 2, "call", "network.tools.fetch.limits.requests_per_call")]);
        assert!(quota.take(Flow::Request, 1).is_ok());
        assert!(quota.take(Flow::Request, 1).is_ok());
        assert!(quota.take(Flow::Received, 1 << 40).is_ok());
        assert!(quota.take(Flow::Request, 1).unwrap_err().contains("2 requests per call"));
    }

    #[test]
    fn renewing_starts_over_with_new_budgets() {
        let quota = Quota::new(&[limit(Counts::Requests, 1, "call", "x")]);
        assert!(quota.take(Flow::Request, 1).is_ok());
        assert!(quota.take(Flow::Request, 1).is_err());
        quota.renew(&[limit(Counts::Requests, 2, "call", "x")]);
        assert!(quota.hit().is_none(), "the next call starts with nothing used");
        assert!(quota.take(Flow::Request, 2).is_ok());
        quota.renew(&[]);
        assert!(!quota.limited());
        assert!(quota.take(Flow::Request, 100).is_ok());
    }

    #[test]
    fn a_zero_budget_refuses_the_first_use() {
        let quota = Quota::new(&[limit(Counts::Requests, 0, "minute", "network.limits.requests_per_minute")]);
        assert!(quota.take(Flow::Request, 1).is_err());
    }

    #[test]
    fn waiting_ends_when_a_budget_is_exceeded() {
        let quota = std::sync::Arc::new(Quota::new(&[limit(Counts::Sent, 1, "call", "x")]));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let waiting = {
                let quota = quota.clone();
                tokio::spawn(async move { quota.wait().await })
            };
            tokio::task::yield_now().await;
            assert!(quota.take(Flow::Sent, 2).is_err());
            tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        });
    }
}
