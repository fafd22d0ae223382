//! The control socket (`GET /ws`): clock-sync pings, state pushes, GM commands, listener reports.
//!
//! JSON text messages with a `type` field; the first server message (`welcome`) names the
//! protocol version. Listeners need no key; a `hello` with the GM key makes a GM, who may
//! send commands (through the same room actor as REST) and sees every listener's reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::clock::{unix_ms, Clock};
use crate::device_check::{CheckSummary, Correction, Engine};
use crate::http::AppError;
use crate::library::Library;
use crate::rate_limit::TokenBucket;
use crate::room::delay::ListenerReport;
use crate::rooms::{Room, Rooms};

/// Version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest accepted message, bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages a client may send per second, sustained; bursts up to twice that.
const MESSAGES_PER_SECOND: f64 = 20.0;
/// A connection that keeps flooding after this many refused messages is closed.
const MAX_REFUSED: u32 = 200;
/// A WebSocket ping goes out this often; a peer silent for three periods is dropped.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// GMs get listener and scan updates at most this often.
const GM_UPDATE_EVERY: Duration = Duration::from_millis(500);

/// What one connected client last reported.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerInfo {
    pub client_id: String,
    /// `listener` or `gm`.
    pub role: &'static str,
    pub device: Option<String>,
    pub connected: bool,
    /// Measured playing position minus target, ms (positive = ahead).
    pub sync_error: Option<f64>,
    /// Seconds of audio buffered ahead.
    pub buffer: Option<f64>,
    /// Round-trip time of the clock pings, ms.
    pub rtt: Option<f64>,
    pub state: Option<String>,
    /// The page says it cannot keep up (it keeps stalling or its seeks do not settle).
    pub struggling: bool,
    /// The speaker delay the page plays ahead by (Bluetooth), ms.
    pub output_delay_ms: Option<f64>,
    /// How the page plays the stream (`hlsjs-mse`, `hlsjs-mms`, `native`, `unsynced`, `none`).
    pub engine: Option<Engine>,
    /// How its controller corrects: `rate`, `seek` (rate changes had no effect there) or `none`.
    pub correction: Option<Correction>,
    /// Unix ms of the last report.
    pub last_report_at: Option<u64>,
    /// The result of a device check (`/check`) this page ran, if it ran one.
    pub check: Option<CheckSummary>,
}

/// Every connected client, for the GM's listeners panel; cheap to clone.
#[derive(Clone, Default)]
pub struct Listeners {
    inner: Arc<Mutex<HashMap<String, ListenerInfo>>>,
    changed: Arc<watch::Sender<u64>>,
}

/// Client ids are numbered across every room, so a device check finds its page's row.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(0);

impl Listeners {
    fn update(&self, id: &str, f: impl FnOnce(&mut ListenerInfo)) {
        if let Ok(mut map) = self.inner.lock() {
            if let Some(info) = map.get_mut(id) {
                f(info);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn add(&self) -> String {
        let id = format!("c{}", NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed) + 1);
        if let Ok(mut map) = self.inner.lock() {
            map.insert(
                id.clone(),
                ListenerInfo {
                    client_id: id.clone(),
                    role: "listener",
                    device: None,
                    connected: true,
                    sync_error: None,
                    buffer: None,
                    rtt: None,
                    state: None,
                    struggling: false,
                    output_delay_ms: None,
                    engine: None,
                    correction: None,
                    last_report_at: None,
                    check: None,
                },
            );
        }
        self.changed.send_modify(|n| *n += 1);
        id
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(id);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Everyone connected, sorted by id.
    pub fn snapshot(&self) -> Vec<ListenerInfo> {
        let mut list: Vec<_> = self.inner.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        list.sort_by(|a, b| a.client_id.len().cmp(&b.client_id.len()).then(a.client_id.cmp(&b.client_id)));
        list
    }

    /// Shows a device check's result on the row of the page that ran it, if it is still there.
    pub fn attach_check(&self, client_id: &str, check: CheckSummary) {
        let attached = self
            .inner
            .lock()
            .map(|mut map| map.get_mut(client_id).map(|l| l.check = Some(check)).is_some())
            .unwrap_or(false);
        if attached {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Listeners (not GMs) connected now.
    pub fn count(&self) -> usize {
        self.inner.lock().map(|m| m.values().filter(|l| l.role == "listener").count()).unwrap_or(0)
    }
}

/// What a connection needs from the server.
#[derive(Clone)]
pub struct Context {
    /// The room this socket is in (`/ws?room=<slug>`, `main` without).
    pub room: Arc<Room>,
    /// Every room, for the GM key check.
    pub rooms: Rooms,
    pub library: Library,
    pub clock: Arc<dyn Clock>,
    pub metrics: crate::metrics::Metrics,
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Hello {
        role: Option<String>,
        key: Option<String>,
        device: Option<String>,
    },
    Ping {
        id: Option<Value>,
        #[serde(rename = "clientSent")]
        client_sent: Option<f64>,
    },
    Command {
        id: Option<Value>,
        command: String,
        #[serde(flatten)]
        fields: serde_json::Map<String, Value>,
    },
    Report {
        #[serde(rename = "syncError")]
        sync_error: Option<f64>,
        /// The playback delay D its target was computed with, ms.
        #[serde(rename = "delayMs")]
        delay_ms: Option<f64>,
        buffer: Option<f64>,
        rtt: Option<f64>,
        state: Option<String>,
        /// The page cannot keep up.
        struggling: Option<bool>,
        /// Its sync controller is locked (done joining).
        locked: Option<bool>,
        /// The most its newest buffered audio lagged the server's clock since the last report, ms.
        #[serde(rename = "lateMs")]
        late_ms: Option<f64>,
        /// It stalled for want of data since the last report (a stall between two reports).
        starved: Option<bool>,
        /// The speaker delay it plays ahead by, ms.
        #[serde(rename = "outputDelayMs")]
        output_delay_ms: Option<f64>,
        device: Option<String>,
        /// How it plays the stream; an engine this server does not know is left out.
        #[serde(default, deserialize_with = "known_or_none")]
        engine: Option<Engine>,
        /// How its controller corrects.
        #[serde(default, deserialize_with = "known_or_none")]
        correction: Option<Correction>,
    },
}

/// A value of a known set, or None for anything else (a newer page's value is no error).
fn known_or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

fn now_ms_f64(clock: &dyn Clock) -> f64 {
    crate::clock::unix_ms_f64(clock.now())
}

fn error(code: &str, message: &str, id: Option<Value>) -> Value {
    json!({"type": "error", "code": code, "message": message, "id": id})
}

async fn send(socket: &mut WebSocket, v: &Value) -> bool {
    socket.send(Message::Text(Utf8Bytes::from(v.to_string()))).await.is_ok()
}

/// Serves one socket until it closes.
#[tracing::instrument(skip_all, fields(client))]
pub async fn run(mut socket: WebSocket, ctx: Context, peer: Option<std::net::IpAddr>) {
    let id = ctx.room.listeners.add();
    tracing::Span::current().record("client", id.as_str());
    let welcome = json!({
        "type": "welcome", "protocol": PROTOCOL_VERSION, "clientId": id,
        "serverTime": now_ms_f64(ctx.clock.as_ref()),
    });
    if send(&mut socket, &welcome).await {
        serve(&mut socket, &ctx, &id, peer).await;
    }
    ctx.room.listeners.remove(&id);
    ctx.room.stage.forget_listener(&id);
}

async fn serve(socket: &mut WebSocket, ctx: &Context, id: &str, peer: Option<std::net::IpAddr>) {
    let mut gm = false;
    let mut events = ctx.room.stage.subscribe();
    let mut listeners_changed = ctx.room.listeners.changed.subscribe();
    let mut scan = ctx.library.scan_status();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut gm_updates = tokio::time::interval(GM_UPDATE_EVERY);
    let mut last_heard = Instant::now();
    let mut bucket = TokenBucket::new(2.0 * MESSAGES_PER_SECOND, MESSAGES_PER_SECOND);
    let mut refused = 0u32;
    let mut sent_listeners: Option<Vec<ListenerInfo>> = None;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(t) => t,
                    Message::Binary(_) => {
                        if !send(socket, &error("bad_message", "messages are JSON text", None)).await { return }
                        continue;
                    }
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                // Floods get an error, then the door.
                if bucket.take(last_heard).is_err() {
                    refused += 1;
                    if refused > MAX_REFUSED {
                        let _ = send(socket, &error("rate_limited", "too many messages; closing", None)).await;
                        return;
                    }
                    if refused % 20 == 1 && !send(socket, &error("rate_limited", "too many messages; slow down", None)).await {
                        return;
                    }
                    continue;
                }
                if text.len() > MAX_MESSAGE_BYTES {
                    if !send(socket, &error("too_large", "messages are at most 64 KiB", None)).await { return }
                    continue;
                }
                let received = now_ms_f64(ctx.clock.as_ref());
                let reply = match serde_json::from_str::<ClientMessage>(text.as_str()) {
                    Err(e) => Some(error("bad_message", &format!("malformed message: {e}"), None)),
                    Ok(msg) => handle(msg, ctx, id, peer, &mut gm, received).await,
                };
                if let Some(r) = reply {
                    if !send(socket, &r).await { return }
                }
                if gm && sent_listeners.is_none() {
                    sent_listeners = Some(Vec::new());
                    gm_updates.reset_immediately();
                }
            }
            event = events.recv() => {
                match event {
                    Ok(state) => if !send(socket, &json!({"type": "state", "state": *state})).await { return },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let state = ctx.room.stage.state();
                        if !send(socket, &json!({"type": "state", "state": *state})).await { return }
                    }
                    Err(_) => return,
                }
            }
            _ = listeners_changed.changed() => {}
            _ = scan.changed() => {
                if gm {
                    let status = scan.borrow_and_update().clone();
                    if !send(socket, &json!({"type": "scan", "status": status})).await { return }
                }
            }
            _ = gm_updates.tick() => {
                if gm {
                    let list = ctx.room.listeners.snapshot();
                    if sent_listeners.as_ref() != Some(&list) {
                        if !send(socket, &json!({"type": "listeners", "listeners": list})).await { return }
                        sent_listeners = Some(list);
                    }
                }
            }
            () = ctx.room.deleted() => {
                let _ = send(socket, &json!({"type": "bye", "reason": "room deleted"})).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            () = ctx.shutdown.cancelled() => {
                // Clients reconnect with backoff and come back in sync once the server is up.
                let _ = send(socket, &json!({"type": "bye", "reason": "server shutting down"})).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > 3 * HEARTBEAT {
                    tracing::debug!("dropping a silent peer");
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() { return }
            }
        }
    }
}

async fn handle(
    msg: ClientMessage,
    ctx: &Context,
    id: &str,
    peer: Option<std::net::IpAddr>,
    gm: &mut bool,
    received: f64,
) -> Option<Value> {
    match msg {
        ClientMessage::Hello { role, key, device } => {
            let wants_gm = role.as_deref() == Some("gm");
            let mut refusal = None;
            if wants_gm {
                match key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
                    Some(k) => match ctx.rooms.authorize(&ctx.room, k, peer) {
                        Ok(_) => *gm = true,
                        Err(r) => {
                            let e = crate::http::key_refused(&ctx.metrics, r, peer);
                            refusal = Some(error(e.status_and_code().1, &e.to_string(), None));
                        }
                    },
                    None => refusal = Some(error("unauthorized", "a GM hello needs the GM key", None)),
                }
            }
            let role = if *gm { "gm" } else { "listener" };
            ctx.room.listeners.update(id, |l| {
                l.role = role;
                l.device = device.map(|d| d.chars().take(120).collect());
            });
            if refusal.is_some() {
                return refusal;
            }
            Some(json!({"type": "state", "state": *ctx.room.stage.state()}))
        }
        ClientMessage::Ping { id: ping_id, client_sent } => Some(json!({
            "type": "pong", "id": ping_id, "clientSent": client_sent,
            "serverReceived": received, "serverSent": now_ms_f64(ctx.clock.as_ref()),
        })),
        ClientMessage::Command { id: cmd_id, command, fields } => {
            if !*gm {
                return Some(error("forbidden", "only the GM can control the room", cmd_id));
            }
            let result = match crate::room::command::command_from_fields(&command, fields) {
                Ok(c) => ctx.room.stage.command(c).await,
                Err(e) => Err(e),
            };
            Some(match result {
                Ok(state) => json!({"type": "reply", "id": cmd_id, "ok": true, "state": state}),
                Err(e) => {
                    let e = AppError::from(e);
                    error(e.status_and_code().1, &e.to_string(), cmd_id)
                }
            })
        }
        ClientMessage::Report {
            sync_error,
            delay_ms,
            buffer,
            rtt,
            state,
            struggling,
            locked,
            late_ms,
            starved,
            output_delay_ms,
            device,
            engine,
            correction,
        } => {
            let at = unix_ms(ctx.clock.now());
            if let Some(e) = sync_error {
                ctx.metrics.observe_sync_error(e);
            }
            let report = ListenerReport {
                buffer_s: buffer,
                sync_error_ms: sync_error,
                delay_ms,
                state: state.as_deref(),
                locked,
                late_ms,
                starved,
            };
            ctx.room.stage.report(id, at, report);
            ctx.room.listeners.update(id, |l| {
                l.sync_error = sync_error.filter(|v| v.is_finite());
                l.buffer = buffer.filter(|v| v.is_finite());
                l.rtt = rtt.filter(|v| v.is_finite());
                l.state = state.map(|s| s.chars().take(20).collect());
                l.struggling = struggling.unwrap_or(false);
                l.output_delay_ms = output_delay_ms.filter(|v| v.is_finite());
                l.engine = engine;
                l.correction = correction;
                if let Some(d) = device {
                    l.device = Some(d.chars().take(120).collect());
                }
                l.last_report_at = Some(at);
            });
            None
        }
    }
}
