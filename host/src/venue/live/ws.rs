//! A WebSocket connection as the adapters use it: text frames in and out, pings answered,
//! and an age limit after which the caller reconnects on its own schedule.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::protocol::StreamEnd;

pub struct Connection {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The connection's age limit: the caller reconnects on its own schedule, before the
    /// venue's.
    deadline: tokio::time::Instant,
    /// Client-side keep-alive (OKX): `ping` after this much silence.
    ping_after: Option<Duration>,
    awaiting_pong: bool,
    /// The engine's order count this stream last made way for (see `driver::order_handed_since`).
    orders_seen: u64,
}

enum Next {
    /// The frame's own buffer, not a copy of it.
    Text(Utf8Bytes),
    /// The connection reached its age limit; the caller closes it and reconnects.
    Aged,
    Closed(String),
}

/// Installs ring as rustls's provider once per process; TLS connections need one.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The largest WebSocket message (and frame) read from a venue.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// What one read from a venue's socket takes at most. tungstenite zero-fills that much of
/// its buffer before every read (`FrameCodec::read_in`): at its default, 128 KiB, that was
/// 3.5% of the engine thread's time in the tick-to-trade bench, on the thread that reads
/// the fill and writes the hedge. A venue's frames are well under this (a trade or an order
/// update a few hundred bytes); a larger one, its length known from its header, is read in
/// several reads into a buffer reserved for all of it.
pub const READ_BUFFER_BYTES: usize = 16 << 10;

impl Connection {
    /// Connects; [`Connection::text`] ends with a rollover once `max_age` has passed.
    pub async fn open(url: &str, max_age: Duration) -> Result<Connection, String> {
        install_tls_provider();
        // A venue's message is bounded where it enters: the largest legitimate one (a
        // 1,000-level book) is well under 1 MiB.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES))
            .read_buffer_size(READ_BUFFER_BYTES);
        // Nagle off: a pong or a subscription leaves when written.
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let deadline = tokio::time::Instant::now() + max_age;
        match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
            Ok(Ok((inner, _))) => Ok(Connection { inner, deadline, ping_after: None, awaiting_pong: false, orders_seen: super::driver::orders_handed() }),
            // The URL may carry a listen key; name the host only.
            Ok(Err(e)) => Err(format!("connecting to {}: {e}", host_of(url))),
            Err(_) => Err(format!("connecting to {}: timed out", host_of(url))),
        }
    }

    /// For a venue where the client keeps the connection alive (OKX): after `every` of
    /// silence [`Connection::text`] sends `ping`; a second silence without the `pong` ends
    /// the connection. `pong`s are not returned.
    pub fn pinging(mut self, every: Duration) -> Self {
        self.ping_after = Some(every);
        self
    }

    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.inner.send(Message::text(text)).await.map_err(|e| e.to_string())
    }

    /// The next text frame. Pings are answered with their payload (tungstenite queues the
    /// pong; the flush sends it now rather than with the next frame we write).
    async fn next_text(&mut self) -> Next {
        let deadline = self.deadline;
        loop {
            let seen = self.orders_seen;
            let next = tokio::select! {
                biased;
                handed = super::driver::order_handed_since(seen) => {
                    self.orders_seen = handed;
                    tokio::task::yield_now().await;
                    continue;
                }
                next = self.inner.next() => next,
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = self.inner.close(None).await;
                    return Next::Aged;
                }
            };
            match next {
                Some(Ok(Message::Text(t))) => {
                    super::latency::frame_read();
                    return Next::Text(t);
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = self.inner.flush().await;
                }
                Some(Ok(Message::Close(frame))) => return Next::Closed(format!("closed by the venue: {}", frame.map(|f| f.reason.to_string()).unwrap_or_default())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Next::Closed(e.to_string()),
                None => return Next::Closed("connection ended".into()),
            }
        }
    }
}

impl Connection {
    /// The next text frame, or how the connection ended, in the supervisor's terms.
    pub async fn text(&mut self) -> Result<Utf8Bytes, StreamEnd> {
        let Some(ping_after) = self.ping_after else { return self.frame().await };
        loop {
            let next = tokio::select! {
                next = self.frame() => next?,
                _ = tokio::time::sleep(ping_after) => {
                    if self.awaiting_pong {
                        return Err(StreamEnd::Failed("no pong within the ping interval".into()));
                    }
                    self.awaiting_pong = true;
                    self.send_text("ping".into()).await.map_err(StreamEnd::Failed)?;
                    continue;
                }
            };
            self.awaiting_pong = false;
            if next != "pong" {
                return Ok(next);
            }
        }
    }

    async fn frame(&mut self) -> Result<Utf8Bytes, StreamEnd> {
        match self.next_text().await {
            Next::Text(t) => Ok(t),
            Next::Aged => Err(StreamEnd::Rollover("connection age".into())),
            Next::Closed(why) => Err(StreamEnd::Failed(why)),
        }
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))).unwrap_or_else(|| "<bad url>".into())
}
