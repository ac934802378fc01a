//! How the engine waits between batches: for a control message from another thread (the
//! file watcher, the control API, an embedding program) or, with live venues, for one of
//! them to report. While it waits on live venues it runs their tasks itself (see
//! [`crate::venue::live::driver`]).

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Messages sent so far, counted after each is in the channel.
    sent: Arc<AtomicU64>,
}

impl Controller {
    /// A controller whose messages go to the receiver returned, for a program (or a
    /// test) that plays the engine's part.
    pub fn detached() -> (Controller, Receiver<Control>) {
        let (controller, incoming, _) = inbox();
        (controller, incoming.rx)
    }

    pub fn send(&self, control: Control) -> Result<(), SendError<Control>> {
        self.tx.send(control)?;
        self.sent.fetch_add(1, Ordering::Release);
        self.woken.notify_one();
        Ok(())
    }
}

/// The engine's side: the control messages, and the live venues' tasks if there are any.
pub(super) struct Inbox {
    incoming: Incoming,
    /// Messages taken from the channel so far.
    taken: AtomicU64,
    live: Option<Driver>,
}

/// The receiving end of the controllers' channel, with their count of messages sent.
pub(super) struct Incoming {
    rx: Receiver<Control>,
    sent: Arc<AtomicU64>,
}

/// A new inbox, its controller, and what wakes it (for a [`Driver`] to share).
pub(super) fn inbox() -> (Controller, Incoming, Arc<Notify>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let woken = Arc::new(Notify::new());
    let sent = Arc::new(AtomicU64::new(0));
    (Controller { tx, woken: woken.clone(), sent: sent.clone() }, Incoming { rx, sent }, woken)
}

impl Inbox {
    pub(super) fn new(incoming: Incoming, live: Option<Driver>) -> Inbox {
        Inbox { incoming, taken: AtomicU64::new(0), live }
    }

    pub(super) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// A control message already sent, if any. Asked before every batch, so the count
    /// is read first: an empty channel's `try_recv` costs a full memory fence, a replay's
    /// 2% (#12). A message counted is in the channel; one not counted yet is taken at the
    /// next ask.
    pub(super) fn try_next(&self) -> Option<Control> {
        if self.incoming.sent.load(Ordering::Acquire) == self.taken.load(Ordering::Relaxed) {
            return None;
        }
        self.incoming.rx.try_recv().ok().inspect(|_| self.took())
    }

    fn took(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits up to `within` for a control message. With live venues, their tasks run
    /// meanwhile, and the wait ends early (with None) when one of them reports.
    pub(super) fn wait(&self, within: Duration) -> Option<Control> {
        match &self.live {
            None => self.incoming.rx.recv_timeout(within).ok().inspect(|_| self.took()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn halt(sender: usize, n: usize) -> Control {
        Control::Halt { strategy: format!("{sender}/{n}"), reason: String::new() }
    }

    /// Every message sent from any thread is taken once, in each sender's order, and
    /// nothing is taken from an empty channel.
    #[test]
    fn every_message_is_taken_once_whoever_sends_it() {
        let (controller, incoming, _) = inbox();
        let inbox = Inbox::new(incoming, None);
        assert!(inbox.try_next().is_none(), "nothing sent");
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let controller = controller.clone();
                std::thread::spawn(move || (0..500).for_each(|n| assert!(controller.send(halt(t, n)).is_ok())))
            })
            .collect();
        let mut taken = Vec::new();
        while taken.len() < 2000 {
            match inbox.try_next() {
                Some(Control::Halt { strategy, .. }) => taken.push(strategy),
                Some(_) => panic!("a message that was not sent"),
                None => std::thread::yield_now(),
            }
        }
        senders.into_iter().for_each(|s| assert!(s.join().is_ok()));
        assert!(inbox.try_next().is_none(), "all taken");
        for t in 0..4 {
            let mine: Vec<String> = taken.iter().filter(|s| s.starts_with(&format!("{t}/"))).cloned().collect();
            let expected: Vec<String> = (0..500).map(|n| format!("{t}/{n}")).collect();
            assert_eq!(mine, expected, "sender {t}");
        }
        // A wait takes a message too, and the count follows it.
        assert!(controller.send(halt(9, 7)).is_ok());
        assert!(matches!(inbox.wait(Duration::from_secs(30)), Some(Control::Halt { .. })));
        assert!(inbox.try_next().is_none(), "the waited-for message is not taken again");
        assert!(controller.send(halt(9, 8)).is_ok());
        assert!(matches!(inbox.try_next(), Some(Control::Halt { strategy, .. }) if strategy == "9/8"));
    }
}
