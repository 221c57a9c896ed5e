//! Requests held at the proxy until the test lets them through.

use std::sync::{Arc, Mutex};

use super::{Call, Request};

/// Requests held at the proxy until the test lets them through: a test forces one interleaving
/// of concurrent invocations (say, two verifiers' writes in a chosen order).
#[derive(Clone)]
pub struct Hold {
    inner: Arc<HoldState>,
}

struct HoldState {
    call: Call,
    /// How many more matching requests are held (later ones pass).
    remaining: Mutex<u32>,
    open: Mutex<bool>,
    arrived: Mutex<u32>,
    changed: std::sync::Condvar,
}

impl Hold {
    /// Waits until `count` requests arrived at this hold; false after `timeout`.
    pub fn wait_arrived(&self, count: u32, timeout: std::time::Duration) -> bool {
        let arrived = self.inner.arrived.lock().expect("hold");
        let (arrived, _) = self
            .inner
            .changed
            .wait_timeout_while(arrived, timeout, |n| *n < count)
            .expect("hold");
        *arrived >= count
    }

    /// Lets the held requests (and any later matching ones) through.
    pub fn open(&self) {
        *self.inner.open.lock().expect("hold") = true;
        self.inner.changed.notify_all();
    }

    pub(super) fn new(call: Call, times: u32) -> Self {
        Self {
            inner: Arc::new(HoldState {
                call,
                remaining: Mutex::new(times),
                open: Mutex::new(false),
                arrived: Mutex::new(0),
                changed: std::sync::Condvar::new(),
            }),
        }
    }

    /// Holds a matching request until [`Hold::open`]; false when it does not match, or the hold
    /// already took as many as it was asked to.
    fn take(&self, operation: &str, body: &[u8]) -> bool {
        if !self.inner.call.matches(operation, body) {
            return false;
        }
        {
            let mut remaining = self.inner.remaining.lock().expect("hold");
            if *remaining == 0 {
                return false;
            }
            *remaining -= 1;
        }
        *self.inner.arrived.lock().expect("hold") += 1;
        self.inner.changed.notify_all();
        let open = self.inner.open.lock().expect("hold");
        let _open = self
            .inner
            .changed
            .wait_timeout_while(open, std::time::Duration::from_secs(60), |open| !*open)
            .expect("hold");
        true
    }
}

/// Waits at the first hold that takes this request, if any.
pub(super) fn hold_if_asked(request: &Request, holds: &[Hold]) {
    let Some(operation) = request
        .header("x-amz-target")
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op.to_string())
    else {
        return;
    };
    for hold in holds {
        if hold.take(&operation, &request.body) {
            return;
        }
    }
}
