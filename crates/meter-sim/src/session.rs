//! One TCP connection to a meter: framing (TCP wrapper or HDLC), the server association
//! ([`dlms::association::server::Server`]) over the meter's [`MeterObjects`], and the injected
//! faults (no answer, slow answer, dropped connection, corrupted frames, flaky connections).
//!
//! Invocation counters: the meter's stored [`MeterSecurityState`] holds the next counter value
//! nobody has taken yet. Each connection reserves a block of [`COUNTER_BLOCK`] values from it
//! under the meter's lock when it starts, seals only with values of its block, and takes a fresh
//! block when the block runs low (before an AARQ; an open association whose block runs out is
//! extended in place when nobody took values since, else the connection is closed). Pushes take
//! single values under the same lock ([`take_invocation_counter`]). So no two messages of a
//! meter are ever sealed with the same counter, however many connections and pushes run at
//! once; the unused tail of a block is given back when the connection ends if nobody took
//! values after it. The replay guards of the clients (last counter accepted per client system
//! title) are merged into the stored state after every exchange, keeping the highest, and
//! refreshed from it before every AARQ.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dlms::association::AssociationStatus;
use dlms::association::server::{MeterSecurityState, Server, ServerConfig, ServerEvent};
use dlms::hdlc::{HdlcAddress, HdlcEvent, HdlcServer};
use dlms::security::{GlobalKeys, HlsSecret, InvocationCounter, ReplayGuard};
use dlms::wrapper::WrapperDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::faults::FaultKind;
use crate::fleet::{Shared, Transport};
use crate::keys::{MeterKeys, SERVER_SAP};
use crate::objects::MeterObjects;

/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How many invocation counter values a connection reserves from its meter at a time.
pub const COUNTER_BLOCK: u32 = 1 << 16;

/// One exchange seals at most two messages (the HLS-GMAC reply of pass 4 and the ciphered
/// response); a connection refreshes its block before an exchange when fewer than this remain.
const COUNTER_MARGIN: u32 = 8;

/// The server association configuration of meter `index` (its five IS 15959 associations),
/// with the secrets derived from the seed.
pub fn server_config(seed: u64, index: u32) -> ServerConfig {
    server_config_with(seed, index, None, None)
}

fn server_config_with(
    seed: u64,
    index: u32,
    lls_secret: Option<&[u8]>,
    global_keys: Option<GlobalKeys>,
) -> ServerConfig {
    let k = MeterKeys::derive(seed, index);
    ServerConfig::is15959(
        k.system_title,
        global_keys.unwrap_or(GlobalKeys {
            encryption: k.global_encryption_key,
            authentication: k.global_authentication_key,
        }),
        lls_secret.unwrap_or(k.lls_secret.as_bytes()),
        [
            HlsSecret::new(k.hls_utility),
            HlsSecret::new(k.hls_push),
            HlsSecret::new(k.hls_firmware),
        ],
    )
}

/// The configuration meter `index` serves with now: as derived, with the LLS secret a head-end
/// has set and the global keys a key transfer installed (if any). Read when an association
/// starts, so a change applies from the next association on.
pub(crate) fn meter_server_config(shared: &Shared, index: u32) -> ServerConfig {
    let (lls, keys) = shared.peek(index, |s| {
        (
            s.and_then(|s| s.lls_secret.clone()),
            s.and_then(|s| s.global_keys.clone()),
        )
    });
    server_config_with(shared.config.seed, index, lls.as_deref(), keys)
}

/// The first invocation counter of a meter that has not sent anything since the simulator
/// started: grows with wall-clock time, so a restarted simulator never repeats a counter a
/// head-end has already seen.
pub fn initial_invocation_counter() -> u32 {
    let secs = Utc::now().timestamp() - 1_600_000_000;
    u32::try_from(secs.max(1).saturating_mul(8)).unwrap_or(u32::MAX - (1 << 24))
}

/// Runs `f` on meter `index`'s stored security state (created on first use), under its lock.
fn with_security<R>(
    shared: &Shared,
    index: u32,
    f: impl FnOnce(&mut MeterSecurityState) -> R,
) -> R {
    let mut g = shared.state(index);
    let sec = g
        .get_mut()
        .security
        .get_or_insert_with(|| Box::new(MeterSecurityState::new(initial_invocation_counter())));
    f(sec)
}

/// Takes one invocation counter value of meter `index` (a push). `None` once the counter is
/// exhausted.
pub(crate) fn take_invocation_counter(shared: &Shared, index: u32) -> Option<u32> {
    with_security(shared, index, |s| s.invocation_counter.take().ok())
}

/// Counter values `start..end` reserved for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CounterBlock {
    pub start: u32,
    pub end: u32,
}

/// Reserves a block of counter values of meter `index` for one connection; also returns the
/// clients' replay guards as they stand.
pub(crate) fn reserve_counters(
    shared: &Shared,
    index: u32,
) -> (
    CounterBlock,
    BTreeMap<dlms::security::SystemTitle, ReplayGuard>,
) {
    with_security(shared, index, |s| {
        let start = s.invocation_counter.peek();
        let end = start.saturating_add(COUNTER_BLOCK);
        s.invocation_counter = InvocationCounter::new(end);
        (CounterBlock { start, end }, s.client_counters.clone())
    })
}

/// Extends `block` in place when nobody took a value after it; false otherwise.
fn extend_counters(shared: &Shared, index: u32, block: &mut CounterBlock) -> bool {
    with_security(shared, index, |s| {
        if s.invocation_counter.peek() != block.end || block.end == u32::MAX {
            return false;
        }
        block.end = block.end.saturating_add(COUNTER_BLOCK);
        s.invocation_counter = InvocationCounter::new(block.end);
        true
    })
}

/// Gives back `next..block.end` (never used) when nobody took a value after the block.
pub(crate) fn release_counters(shared: &Shared, index: u32, block: CounterBlock, next: u32) {
    with_security(shared, index, |s| {
        if s.invocation_counter.peek() == block.end && (block.start..=block.end).contains(&next) {
            s.invocation_counter = InvocationCounter::new(next);
        }
    });
}

/// Merges a connection's view into the stored state: per client system title the highest
/// last-accepted counter wins (a guard never moves back), and the sending counter never moves
/// back either.
pub(crate) fn store_security(shared: &Shared, index: u32, sec: &MeterSecurityState) {
    with_security(shared, index, |s| {
        if sec.invocation_counter.peek() > s.invocation_counter.peek() {
            s.invocation_counter = sec.invocation_counter.clone();
        }
        merge_guards(&mut s.client_counters, &sec.client_counters);
    });
}

/// Keeps, per client system title, the higher of the two last-accepted counters.
fn merge_guards(
    into: &mut BTreeMap<dlms::security::SystemTitle, ReplayGuard>,
    from: &BTreeMap<dlms::security::SystemTitle, ReplayGuard>,
) {
    for (title, guard) in from {
        let keep = into.entry(*title).or_default();
        if guard.last_accepted() > keep.last_accepted() {
            *keep = guard.clone();
        }
    }
}

/// The server association of one connection and the counter block it seals with.
struct Association {
    shared: Arc<Shared>,
    index: u32,
    server: Server,
    block: CounterBlock,
}

impl Association {
    fn start(shared: Arc<Shared>, index: u32) -> Self {
        let (block, client_counters) = reserve_counters(&shared, index);
        let mut security = MeterSecurityState::new(block.start);
        security.client_counters = client_counters;
        let server = Server::new(meter_server_config(&shared, index), security);
        Association {
            shared,
            index,
            server,
            block,
        }
    }

    fn next_counter(&self) -> u32 {
        self.server.security_state().invocation_counter.peek()
    }

    /// Before handing `apdu` to the server: makes sure the exchange seals with values of this
    /// connection's block. False: the connection cannot go on safely and must be closed.
    fn prepare(&mut self, apdu: &[u8]) -> bool {
        let low = self.block.end.saturating_sub(self.next_counter()) < COUNTER_MARGIN;
        let aarq = apdu.first() == Some(&dlms::apdu::tag::AARQ);
        if aarq || (low && self.server.status() == AssociationStatus::NonAssociated) {
            // No association to keep (an AARQ replaces it): start afresh with the meter's
            // current configuration and replay guards, and a fresh block if this one runs low.
            let mut sec = self.server.security_state().clone();
            let stored = with_security(&self.shared, self.index, |s| s.client_counters.clone());
            merge_guards(&mut sec.client_counters, &stored);
            if low {
                release_counters(&self.shared, self.index, self.block, self.next_counter());
                let (block, _) = reserve_counters(&self.shared, self.index);
                self.block = block;
                sec.invocation_counter = InvocationCounter::new(block.start);
            }
            self.server = Server::new(meter_server_config(&self.shared, self.index), sec);
            return true;
        }
        !low || extend_counters(&self.shared, self.index, &mut self.block)
    }

    /// Merges the replay guards into the meter's stored state.
    fn store(&self) {
        store_security(&self.shared, self.index, self.server.security_state());
    }
}

impl Drop for Association {
    fn drop(&mut self) {
        self.store();
        release_counters(&self.shared, self.index, self.block, self.next_counter());
    }
}

enum Framing {
    Wrapper(WrapperDecoder),
    Hdlc(Box<HdlcServer>),
}

fn powered(shared: &Shared, index: u32) -> bool {
    let now = Utc::now().timestamp();
    let m = shared.peek(index, |s| crate::meter::model(shared, index, s));
    m.powered_at(now)
}

fn corrupt(frame: &mut [u8], transport: Transport) {
    match transport {
        // A wrong wrapper version: the frame cannot be decoded.
        Transport::Wrapper => {
            if let Some(b) = frame.get_mut(1) {
                *b ^= 0x5A;
            }
        }
        // A broken FCS.
        Transport::Hdlc => {
            let n = frame.len();
            if n >= 3 {
                frame[n - 2] ^= 0xFF;
            }
        }
    }
}

/// Serves one connection until the client leaves, the meter loses power or the fleet stops.
pub(crate) async fn serve(shared: Arc<Shared>, index: u32, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut shutdown = shared.shutdown.clone();
    if !powered(&shared, index) {
        return;
    }
    let transport = shared.config.transport;
    let mut buf = vec![0u8; 4096];
    if shared.fault(index, FaultKind::NoAnswer).is_some() {
        // Swallow everything, answer nothing.
        loop {
            tokio::select! {
                r = stream.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { return },
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(IDLE_TIMEOUT) => return,
            }
        }
    }
    let mut framing = match transport {
        Transport::Wrapper => Framing::Wrapper(WrapperDecoder::new()),
        Transport::Hdlc => {
            match HdlcServer::new(dlms::hdlc::ServerConfig::new(HdlcAddress::One(
                SERVER_SAP as u8,
            ))) {
                Ok(s) => Framing::Hdlc(Box::new(s)),
                Err(e) => {
                    tracing::warn!(meter = index, error = %e, "cannot start the HDLC link");
                    return;
                }
            }
        }
    };
    // A flaky meter fails this connection (closes it on the AARQ) by a hash of its number.
    let flaky_failure = shared.fault(index, FaultKind::Flaky).is_some_and(|fault| {
        let connection = {
            let mut g = shared.state(index);
            let s = g.get_mut();
            s.connections += 1;
            s.connections
        };
        fault.fails_connection(shared.config.seed, index, connection)
    });
    let mut assoc = Association::start(shared.clone(), index);
    let mut objects = MeterObjects::new(shared.clone(), index);
    let mut associated = false;
    let mut last_activity = tokio::time::Instant::now();
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if !powered(&shared, index) || last_activity.elapsed() > IDLE_TIMEOUT { break }
                continue;
            }
        };
        if !powered(&shared, index) {
            break;
        }
        last_activity = tokio::time::Instant::now();
        // Split what arrived into APDUs (with the client SAP they came from).
        let mut apdus: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut out_frames: Vec<Vec<u8>> = Vec::new();
        match &mut framing {
            Framing::Wrapper(dec) => {
                dec.push(&buf[..n]);
                loop {
                    match dec.next_frame() {
                        Ok(Some(f)) => apdus.push((f.source, f.apdu)),
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
            Framing::Hdlc(link) => {
                for ev in link.push(&buf[..n]) {
                    match ev {
                        HdlcEvent::Apdu(a) => {
                            let sap = link.client_sap().unwrap_or(16) as u16;
                            apdus.push((sap, a));
                        }
                        HdlcEvent::Disconnected(_) => assoc.server.reset(),
                        _ => {}
                    }
                }
                while let Some(f) = link.poll_transmit() {
                    out_frames.push(f);
                }
            }
        }
        for (client_sap, apdu) in apdus {
            if associated && shared.fault(index, crate::FaultKind::Drop).is_some() {
                // Drop mid-session: the association is up, the request goes unanswered.
                return;
            }
            if flaky_failure && apdu.first() == Some(&dlms::apdu::tag::AARQ) {
                tracing::debug!(
                    meter = index,
                    "flaky: closing the connection before the AARE"
                );
                return;
            }
            if !assoc.prepare(&apdu) {
                tracing::warn!(meter = index, "invocation counters exhausted; closing");
                return;
            }
            // The HLS challenge (StoC): fresh randomness, used only if this is an AARQ.
            let mut stoc = [0u8; 16];
            if apdu.first() == Some(&dlms::apdu::tag::AARQ)
                && let Err(e) = getrandom::fill(&mut stoc)
            {
                tracing::warn!(meter = index, error = %e, "no randomness for the challenge");
                return;
            }
            let out = assoc
                .server
                .on_apdu(client_sap, &apdu, Utc::now(), &stoc, &mut objects);
            match &out.event {
                Some(ServerEvent::Associated { .. }) => associated = true,
                Some(ServerEvent::Released { .. }) => associated = false,
                Some(ServerEvent::Rejected {
                    client_sap, reason, ..
                }) => {
                    tracing::debug!(meter = index, client_sap, reason, "association rejected")
                }
                _ => {}
            }
            assoc.store();
            let Some(response) = out.response else {
                continue;
            };
            match &mut framing {
                Framing::Wrapper(_) => {
                    if let Ok(f) = dlms::wrapper::encode(SERVER_SAP, client_sap, &response) {
                        out_frames.push(f);
                    }
                }
                Framing::Hdlc(link) => {
                    if link.send_apdu(&response).is_ok() {
                        while let Some(f) = link.poll_transmit() {
                            out_frames.push(f);
                        }
                    }
                }
            }
        }
        if out_frames.is_empty() {
            continue;
        }
        if let Some(slow) = shared.fault(index, FaultKind::Slow) {
            tokio::time::sleep(slow.param).await;
        }
        let corrupting = shared.fault(index, FaultKind::Corrupt).is_some();
        for mut f in out_frames {
            if corrupting {
                corrupt(&mut f, transport);
            }
            if stream.write_all(&f).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Fleet, FleetConfig, FleetHandle};

    async fn fleet() -> FleetHandle {
        Fleet::offline(FleetConfig::new(
            1,
            std::net::Ipv4Addr::new(127, 1, 0, 1),
            4059,
            1,
        ))
        .await
        .unwrap()
    }

    fn guards(pairs: &[([u8; 8], u32)]) -> MeterSecurityState {
        let mut s = MeterSecurityState::new(100);
        for (title, last) in pairs {
            s.client_counters
                .insert(*title, ReplayGuard::with_last_accepted(*last));
        }
        s
    }

    fn last(shared: &Shared, title: [u8; 8]) -> Option<u32> {
        shared.peek(0, |s| {
            s.and_then(|s| s.security.as_ref())
                .and_then(|sec| sec.client_counters.get(&title))
                .and_then(ReplayGuard::last_accepted)
        })
    }

    #[tokio::test]
    async fn storing_an_older_view_never_moves_a_replay_guard_back() {
        let f = fleet().await;
        let shared = f.shared();
        let (a, b) = (*b"HEADEND1", *b"HEADEND2");
        // The stored state is newer (a push moved its counter on) and has seen A up to 10.
        let mut newer = guards(&[(a, 10)]);
        newer.invocation_counter = InvocationCounter::new(u32::MAX - 10);
        store_security(shared, 0, &newer);
        // A connection that started earlier saw A only up to 5, and B up to 3.
        store_security(shared, 0, &guards(&[(a, 5), (b, 3)]));
        assert_eq!(last(shared, a), Some(10));
        assert_eq!(last(shared, b), Some(3));
        // A connection that saw more of A moves it on.
        store_security(shared, 0, &guards(&[(a, 20)]));
        assert_eq!(last(shared, a), Some(20));
        // The sending counter never moves back.
        assert_eq!(take_invocation_counter(shared, 0), Some(u32::MAX - 10));
    }

    #[tokio::test]
    async fn connections_and_pushes_take_disjoint_counters() {
        let f = fleet().await;
        let shared = f.shared();
        let (one, _) = reserve_counters(shared, 0);
        let (two, _) = reserve_counters(shared, 0);
        let push = take_invocation_counter(shared, 0).unwrap();
        assert_eq!(one.end - one.start, COUNTER_BLOCK);
        assert!(one.end <= two.start);
        assert!(two.end <= push);
        // `one` cannot give its tail back: others took values after it.
        release_counters(shared, 0, one, one.start + 3);
        assert_eq!(take_invocation_counter(shared, 0), Some(push + 1));
        // The last block given back: its unused tail is taken next.
        let (three, _) = reserve_counters(shared, 0);
        release_counters(shared, 0, three, three.start + 7);
        assert_eq!(take_invocation_counter(shared, 0), Some(three.start + 7));
        // Extending in place works only while nobody took a value after the block.
        let (mut four, _) = reserve_counters(shared, 0);
        assert!(extend_counters(shared, 0, &mut four));
        assert_eq!(four.end - four.start, 2 * COUNTER_BLOCK);
        take_invocation_counter(shared, 0).unwrap();
        assert!(!extend_counters(shared, 0, &mut four));
    }
}
