//! One TCP connection to a meter: framing (TCP wrapper or HDLC), the server association
//! ([`dlms::association::server::Server`]) over the meter's [`MeterObjects`], and the injected
//! faults (no answer, slow answer, dropped connection, corrupted frames). The meter's security
//! counters are written back to its state after every exchange so they keep increasing across
//! connections.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dlms::association::server::{MeterSecurityState, Server, ServerConfig, ServerEvent};
use dlms::hdlc::{HdlcAddress, HdlcEvent, HdlcServer};
use dlms::security::{GlobalKeys, HlsSecret};
use dlms::wrapper::WrapperDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::faults::FaultKind;
use crate::fleet::{Shared, Transport};
use crate::hash::{hash, tag};
use crate::keys::{MeterKeys, SERVER_SAP};
use crate::objects::MeterObjects;

/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The server association configuration of meter `index` (its five IS 15959 associations).
pub fn server_config(seed: u64, index: u32) -> ServerConfig {
    let k = MeterKeys::derive(seed, index);
    ServerConfig::is15959(
        k.system_title,
        GlobalKeys {
            encryption: k.global_encryption_key,
            authentication: k.global_authentication_key,
        },
        k.lls_secret.as_bytes(),
        [
            HlsSecret::new(k.hls_utility),
            HlsSecret::new(k.hls_push),
            HlsSecret::new(k.hls_firmware),
        ],
    )
}

/// The first invocation counter of a meter that has not sent anything since the simulator
/// started: grows with wall-clock time, so a restarted simulator never repeats a counter a
/// head-end has already seen.
pub fn initial_invocation_counter() -> u32 {
    let secs = Utc::now().timestamp() - 1_600_000_000;
    u32::try_from(secs.max(1).saturating_mul(8)).unwrap_or(u32::MAX - (1 << 24))
}

pub(crate) fn security_state(shared: &Shared, index: u32) -> MeterSecurityState {
    shared
        .peek(index, |s| s.and_then(|s| s.security.as_deref().cloned()))
        .unwrap_or_else(|| MeterSecurityState::new(initial_invocation_counter()))
}

/// Keeps the newer counters (another connection to the same meter may have moved them on).
pub(crate) fn store_security(shared: &Shared, index: u32, sec: &MeterSecurityState) {
    let mut g = shared.state(index);
    let s = g.get_mut();
    match &mut s.security {
        Some(old) if old.invocation_counter.peek() > sec.invocation_counter.peek() => {
            for (k, v) in &sec.client_counters {
                old.client_counters.insert(*k, v.clone());
            }
        }
        slot => *slot = Some(Box::new(sec.clone())),
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
    let mut server = Server::new(
        server_config(shared.config.seed, index),
        security_state(&shared, index),
    );
    let mut objects = MeterObjects::new(shared.clone(), index);
    let mut associated = false;
    let mut challenges = 0u64;
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
                        HdlcEvent::Disconnected(_) => server.reset(),
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
                store_security(&shared, index, server.security_state());
                return;
            }
            challenges += 1;
            let h1 = hash(
                shared.config.seed,
                &[
                    tag::CHALLENGE,
                    index as u64,
                    challenges,
                    Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64,
                ],
            );
            let h2 = hash(h1, &[challenges]);
            let mut stoc = [0u8; 16];
            stoc[..8].copy_from_slice(&h1.to_be_bytes());
            stoc[8..].copy_from_slice(&h2.to_be_bytes());
            let out = server.on_apdu(client_sap, &apdu, Utc::now(), &stoc, &mut objects);
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
            store_security(&shared, index, server.security_state());
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
