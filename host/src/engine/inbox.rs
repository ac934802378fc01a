//! How the engine waits between batches: for a control message from another thread (the
//! file watcher, the control API, an embedding program) or, with live venues, for one of
//! them to report. While it waits on live venues it runs their tasks itself (see
//! [`crate::venue::live::driver`]).

use std::sync::mpsc::{Receiver, SendError, Sender};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Control;
use crate::venue::live::driver::Driver;

/// Sends control messages to the engine and ends its wait, whatever it waits on.
#[derive(Clone)]
pub struct Controller {
    tx: Sender<Control>,
    woken: Arc<Notify>,
}

impl Controller {
    /// A controller whose messages go to the receiver returned, for a program (or a
    /// test) that plays the engine's part.
    pub fn detached() -> (Controller, Receiver<Control>) {
        let (controller, rx, _) = inbox();
        (controller, rx)
    }

    pub fn send(&self, control: Control) -> Result<(), SendError<Control>> {
        self.tx.send(control)?;
        self.woken.notify_one();
        Ok(())
    }
}

/// The engine's side: the control messages, and the live venues' tasks if there are any.
pub(super) struct Inbox {
    rx: Receiver<Control>,
    live: Option<Driver>,
}

/// A new inbox, its controller, and what wakes it (for a [`Driver`] to share).
pub(super) fn inbox() -> (Controller, Receiver<Control>, Arc<Notify>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let woken = Arc::new(Notify::new());
    (Controller { tx, woken: woken.clone() }, rx, woken)
}

impl Inbox {
    pub(super) fn new(rx: Receiver<Control>, live: Option<Driver>) -> Inbox {
        Inbox { rx, live }
    }

    pub(super) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// A control message already sent, if any.
    pub(super) fn try_next(&self) -> Option<Control> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `within` for a control message. With live venues, their tasks run
    /// meanwhile, and the wait ends early (with None) when one of them reports.
    pub(super) fn wait(&self, within: Duration) -> Option<Control> {
        match &self.live {
            None => self.rx.recv_timeout(within).ok(),
            Some(driver) => {
                if let Some(control) = self.try_next() {
                    return Some(control);
                }
                driver.run_until_woken(within);
                self.try_next()
            }
        }
    }

    /// Runs the live venues' ready tasks without waiting: for a replay beside live
    /// venues at full speed, which never waits.
    pub(super) fn run_ready(&self) {
        if let Some(driver) = &self.live {
            driver.run_ready();
        }
    }
}
