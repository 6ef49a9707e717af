//! The HDLC link layer of IEC 62056-46 in normal response mode, sans-IO: [`HdlcClient`] (the
//! primary station, in the head-end) and [`HdlcServer`] (the secondary station, in the meter).
//!
//! Both are "bytes in, bytes and events out": hand received bytes to `push`, which returns
//! [`HdlcEvent`]s, and send whatever `poll_transmit` gives until it returns `None`. APDUs go in
//! with `send_apdu`; they are prefixed with the LLC header and cut into I-frames no longer than
//! the negotiated maximum information field, with the segmentation bit on all but the last.
//!
//! Flow control is stop-and-wait: each station sends one I-frame per poll and waits for it to be
//! acknowledged, whatever window was negotiated (always allowed); received windows larger than
//! one are accepted.
//!
//! Timers are the caller's:
//! - client: while [`HdlcClient::awaiting_response`] is true, run a response timer (restart it
//!   whenever bytes arrive); when it expires call [`HdlcClient::on_timeout`]. It repeats SNRM or
//!   DISC, or polls the server with RR (which makes the server repeat a lost frame, and tells
//!   the client which of its own frames to repeat); after `max_retries` expiries in a row it
//!   gives up with [`DisconnectReason::Timeout`].
//! - server: run an inactivity timer, restarted on every `push`; when it expires call
//!   [`HdlcServer::on_inactivity_timeout`].

use std::collections::VecDeque;

use super::frame::{Control, HdlcAddress, HdlcFrame, LLC_COMMAND, LLC_RESPONSE, encode_frame};
use super::params::LinkParameters;
use super::stream::FrameExtractor;

/// What the link reports to the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HdlcEvent {
    /// The link is up (SNRM answered by UA), with the parameters this station now uses.
    Connected(LinkParameters),
    /// A complete APDU, reassembled from its segments, LLC header removed.
    Apdu(Vec<u8>),
    /// The information field of a UI frame (unnumbered, unacknowledged).
    UnnumberedInformation(Vec<u8>),
    /// The link is down.
    Disconnected(DisconnectReason),
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This station asked for it (DISC answered by UA or DM).
    Requested,
    /// The peer disconnected (DISC, or a DM while connected, or a new SNRM replacing the link).
    ByPeer,
    /// The server answered SNRM with DM.
    Refused,
    /// The server rejected a frame with FRMR; `info` is the FRMR information field.
    FrameRejected { info: Vec<u8> },
    /// The peer broke the protocol (invalid N(R), invalid parameters, APDU too long).
    ProtocolError(&'static str),
    /// The client's response timer ran out `max_retries` times in a row.
    Timeout,
    /// The server's inactivity timer ran out.
    Inactivity,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Disconnected,
    /// SNRM sent, waiting for UA (client only).
    Connecting,
    Connected,
    /// DISC sent, waiting for UA or DM (client only).
    Disconnecting,
}

/// Why a link operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the HDLC link is not connected")]
    NotConnected,
    #[error("invalid HDLC configuration: {0}")]
    InvalidConfig(String),
}

/// The default largest APDU reassembled from segments.
pub const DEFAULT_MAX_APDU_LEN: usize = 65535;

/// How an [`HdlcClient`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client SAP (IS 15959: 16 public, 32 meter reader, 48 utility setting, 64 push,
    /// 80 firmware upgrade).
    pub client_sap: u8,
    /// The server: logical device (upper) and physical device (lower) address.
    pub server_address: HdlcAddress,
    /// The parameters proposed in SNRM, from the client's point of view.
    pub limits: LinkParameters,
    /// The largest APDU accepted from the server.
    pub max_apdu_len: usize,
    /// Response timeouts in a row before the link is declared lost.
    pub max_retries: u32,
}

impl ClientConfig {
    pub fn new(client_sap: u8, server_address: HdlcAddress) -> Self {
        ClientConfig {
            client_sap,
            server_address,
            limits: LinkParameters::default(),
            max_apdu_len: DEFAULT_MAX_APDU_LEN,
            max_retries: 3,
        }
    }
}

/// How an [`HdlcServer`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// This server's address. Frames to the same upper address, and to the same lower address
    /// if they name one, are accepted; the answers use the address form the client used.
    pub server_address: HdlcAddress,
    /// This server's limits, from its own point of view.
    pub limits: LinkParameters,
    /// The largest APDU accepted from a client.
    pub max_apdu_len: usize,
}

impl ServerConfig {
    pub fn new(server_address: HdlcAddress) -> Self {
        ServerConfig {
            server_address,
            limits: LinkParameters::default(),
            max_apdu_len: DEFAULT_MAX_APDU_LEN,
        }
    }
}

/// One I-frame's worth of an APDU.
#[derive(Debug, Clone)]
struct Segment {
    info: Vec<u8>,
    more: bool,
}

/// What became of a received I-frame.
#[derive(Debug)]
enum Received {
    /// Not the expected N(S): a repeat, discarded.
    OutOfSequence,
    /// A segment; more are to come.
    Partial,
    Complete(Vec<u8>),
    /// Complete, but without the expected LLC header: discarded.
    BadLlc,
    /// Longer than the maximum APDU.
    TooLong,
}

/// Sequence numbers, segmentation and reassembly: what client and server share.
#[derive(Debug)]
struct Sequencing {
    local: HdlcAddress,
    peer: HdlcAddress,
    params: LinkParameters,
    /// V(S): N(S) of the next new I-frame.
    vs: u8,
    /// V(R): N(S) expected in the next I-frame received.
    vr: u8,
    /// The last I-frame sent, until acknowledged.
    unacked: Option<(u8, Segment)>,
    /// The peer's N(R) says `unacked` did not arrive.
    retransmit: bool,
    outgoing: VecDeque<Segment>,
    incoming: Vec<u8>,
    /// In the middle of a segmented APDU from the peer.
    receiving: bool,
    llc_out: [u8; 3],
    llc_in: [u8; 3],
    max_apdu_len: usize,
}

impl Sequencing {
    fn new(
        local: HdlcAddress,
        peer: HdlcAddress,
        params: LinkParameters,
        llc_out: [u8; 3],
        llc_in: [u8; 3],
        max_apdu_len: usize,
    ) -> Self {
        Sequencing {
            local,
            peer,
            params,
            vs: 0,
            vr: 0,
            unacked: None,
            retransmit: false,
            outgoing: VecDeque::new(),
            incoming: Vec::new(),
            receiving: false,
            llc_out,
            llc_in,
            max_apdu_len,
        }
    }

    fn frame(&self, control: Control, segmented: bool, info: Vec<u8>) -> HdlcFrame {
        HdlcFrame {
            segmented,
            destination: self.peer,
            source: self.local,
            control,
            info,
        }
    }

    fn queue_apdu(&mut self, apdu: &[u8]) {
        let mut data = Vec::with_capacity(self.llc_out.len() + apdu.len());
        data.extend_from_slice(&self.llc_out);
        data.extend_from_slice(apdu);
        let max = usize::from(self.params.max_info_tx).max(1);
        let count = data.len().div_ceil(max);
        for (i, chunk) in data.chunks(max).enumerate() {
            self.outgoing.push_back(Segment {
                info: chunk.to_vec(),
                more: i + 1 < count,
            });
        }
    }

    /// Takes the peer's N(R): it acknowledges everything before it. Fails on an N(R) that
    /// acknowledges a frame never sent.
    fn ack(&mut self, nr: u8) -> Result<(), ()> {
        if nr == self.vs {
            self.unacked = None;
            self.retransmit = false;
            return Ok(());
        }
        match &self.unacked {
            Some((ns, _)) if *ns == nr => {
                self.retransmit = true;
                Ok(())
            }
            _ => Err(()),
        }
    }

    fn receive(&mut self, ns: u8, segmented: bool, info: &[u8]) -> Received {
        if ns != self.vr {
            return Received::OutOfSequence;
        }
        self.vr = (self.vr + 1) % 8;
        let limit = self.max_apdu_len.saturating_add(self.llc_in.len());
        if self.incoming.len().saturating_add(info.len()) > limit {
            self.incoming = Vec::new();
            self.receiving = false;
            return Received::TooLong;
        }
        self.incoming.extend_from_slice(info);
        if segmented {
            self.receiving = true;
            return Received::Partial;
        }
        self.receiving = false;
        let data = std::mem::take(&mut self.incoming);
        match data.strip_prefix(&self.llc_in) {
            Some(apdu) => Received::Complete(apdu.to_vec()),
            None => Received::BadLlc,
        }
    }

    /// The next I-frame to send: a repeat if the peer asked for one, else the next segment if
    /// the previous one was acknowledged.
    fn next_i_frame(&mut self, pf: bool) -> Option<HdlcFrame> {
        if self.retransmit {
            self.retransmit = false;
            if let Some((ns, segment)) = &self.unacked {
                let control = Control::I {
                    send_seq: *ns,
                    recv_seq: self.vr,
                    pf,
                };
                return Some(self.frame(control, segment.more, segment.info.clone()));
            }
        }
        if self.unacked.is_some() {
            return None;
        }
        let segment = self.outgoing.pop_front()?;
        let control = Control::I {
            send_seq: self.vs,
            recv_seq: self.vr,
            pf,
        };
        let frame = self.frame(control, segment.more, segment.info.clone());
        self.unacked = Some((self.vs, segment));
        self.vs = (self.vs + 1) % 8;
        Some(frame)
    }

    fn rr(&self, pf: bool) -> HdlcFrame {
        self.frame(
            Control::Rr {
                recv_seq: self.vr,
                pf,
            },
            false,
            Vec::new(),
        )
    }
}

fn emit(transmit: &mut VecDeque<Vec<u8>>, frame: &HdlcFrame) {
    // Addresses are validated at construction, sequence numbers kept modulo 8 and information
    // fields within the negotiated maximum, so encoding cannot fail.
    match encode_frame(frame) {
        Ok(bytes) => transmit.push_back(bytes),
        Err(err) => debug_assert!(false, "HDLC frame could not be encoded: {err}"),
    }
}

fn check_config(
    addresses: &[HdlcAddress],
    limits: &LinkParameters,
    max_apdu_len: usize,
) -> Result<(), LinkError> {
    for a in addresses {
        a.validate()
            .map_err(|e| LinkError::InvalidConfig(e.to_string()))?;
    }
    limits.validate().map_err(LinkError::InvalidConfig)?;
    if max_apdu_len == 0 {
        return Err(LinkError::InvalidConfig(
            "max_apdu_len must not be 0".into(),
        ));
    }
    Ok(())
}

/// The client (primary station) of an HDLC link.
#[derive(Debug)]
pub struct HdlcClient {
    config: ClientConfig,
    state: LinkState,
    link: Sequencing,
    extractor: FrameExtractor,
    transmit: VecDeque<Vec<u8>>,
    /// A frame with the poll bit is out and its final answer has not come.
    waiting: bool,
    peer_busy: bool,
    retries: u32,
    discarded: u64,
}

impl HdlcClient {
    pub fn new(config: ClientConfig) -> Result<Self, LinkError> {
        let local = HdlcAddress::client(config.client_sap);
        check_config(
            &[local, config.server_address],
            &config.limits,
            config.max_apdu_len,
        )?;
        let link = Self::fresh_link(&config, LinkParameters::default());
        Ok(HdlcClient {
            config,
            state: LinkState::Disconnected,
            link,
            extractor: FrameExtractor::new(),
            transmit: VecDeque::new(),
            waiting: false,
            peer_busy: false,
            retries: 0,
            discarded: 0,
        })
    }

    fn fresh_link(config: &ClientConfig, params: LinkParameters) -> Sequencing {
        Sequencing::new(
            HdlcAddress::client(config.client_sap),
            config.server_address,
            params,
            LLC_COMMAND,
            LLC_RESPONSE,
            config.max_apdu_len,
        )
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The negotiated parameters while connected, from the client's point of view.
    pub fn parameters(&self) -> Option<LinkParameters> {
        (self.state == LinkState::Connected).then_some(self.link.params)
    }

    /// Whether a response is due: run the response timer while this is true.
    pub fn awaiting_response(&self) -> bool {
        self.waiting
    }

    /// Received frames dropped: bad HCS/FCS, other addresses, APDUs without LLC header.
    pub fn discarded_frames(&self) -> u64 {
        self.discarded
    }

    /// Sends SNRM with this client's proposed parameters. Also resets a connected link.
    pub fn connect(&mut self) {
        self.link = Self::fresh_link(&self.config, LinkParameters::default());
        self.extractor.clear();
        self.state = LinkState::Connecting;
        self.peer_busy = false;
        self.retries = 0;
        self.send_snrm();
    }

    /// Sends DISC; queued APDUs are dropped. Nothing happens if already disconnected.
    pub fn disconnect(&mut self) {
        if self.state == LinkState::Disconnected {
            return;
        }
        self.link.outgoing.clear();
        self.state = LinkState::Disconnecting;
        self.retries = 0;
        self.send_disc();
    }

    /// Queues an APDU for the server; it is sent as soon as the link lets the client speak.
    pub fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), LinkError> {
        if self.state != LinkState::Connected {
            return Err(LinkError::NotConnected);
        }
        self.link.queue_apdu(apdu);
        self.pump();
        Ok(())
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Takes bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<HdlcEvent> {
        self.extractor.push(bytes);
        let mut events = Vec::new();
        while let Some(result) = self.extractor.next_frame() {
            match result {
                Ok(frame) => self.handle(frame, &mut events),
                Err(_) => self.discarded += 1,
            }
        }
        events
    }

    /// The response timer expired: repeat SNRM or DISC, or poll the server with RR.
    pub fn on_timeout(&mut self) -> Vec<HdlcEvent> {
        if self.state == LinkState::Disconnected {
            return Vec::new();
        }
        self.retries = self.retries.saturating_add(1);
        if self.retries > self.config.max_retries {
            self.drop_link();
            return vec![HdlcEvent::Disconnected(DisconnectReason::Timeout)];
        }
        match self.state {
            LinkState::Connecting => self.send_snrm(),
            LinkState::Disconnecting => self.send_disc(),
            LinkState::Connected => {
                let rr = self.link.rr(true);
                emit(&mut self.transmit, &rr);
                self.waiting = true;
            }
            LinkState::Disconnected => {}
        }
        Vec::new()
    }

    fn send_snrm(&mut self) {
        let info = self.config.limits.encode();
        let frame = self.link.frame(Control::Snrm { pf: true }, false, info);
        emit(&mut self.transmit, &frame);
        self.waiting = true;
    }

    fn send_disc(&mut self) {
        let frame = self
            .link
            .frame(Control::Disc { pf: true }, false, Vec::new());
        emit(&mut self.transmit, &frame);
        self.waiting = true;
    }

    fn drop_link(&mut self) {
        self.state = LinkState::Disconnected;
        self.waiting = false;
        self.peer_busy = false;
        self.link = Self::fresh_link(&self.config, LinkParameters::default());
    }

    /// The server broke the protocol: tell it to disconnect and drop the link.
    fn fail(&mut self, events: &mut Vec<HdlcEvent>, why: &'static str) {
        self.send_disc();
        self.drop_link();
        events.push(HdlcEvent::Disconnected(DisconnectReason::ProtocolError(
            why,
        )));
    }

    /// Sends whatever is next when the client holds the right to speak.
    fn pump(&mut self) {
        if self.state != LinkState::Connected || self.waiting {
            return;
        }
        if self.link.receiving {
            // Ask for the next segment of the server's APDU.
            let rr = self.link.rr(true);
            emit(&mut self.transmit, &rr);
            self.waiting = true;
            return;
        }
        if self.peer_busy {
            return;
        }
        if let Some(frame) = self.link.next_i_frame(true) {
            emit(&mut self.transmit, &frame);
            self.waiting = true;
        }
    }

    fn handle(&mut self, frame: HdlcFrame, events: &mut Vec<HdlcEvent>) {
        if frame.destination != HdlcAddress::client(self.config.client_sap)
            || !frame.source.same_station(&self.config.server_address)
        {
            self.discarded += 1;
            return;
        }
        let pf = frame.control.pf();
        if pf {
            self.waiting = false;
            self.retries = 0;
        }
        match (self.state, frame.control) {
            (_, Control::Ui { .. }) => {
                events.push(HdlcEvent::UnnumberedInformation(frame.info));
            }
            (LinkState::Connecting, Control::Ua { .. }) => {
                match LinkParameters::decode(&frame.info) {
                    Ok(offer) => {
                        let params = self.config.limits.negotiate(&offer);
                        self.link = Self::fresh_link(&self.config, params);
                        self.state = LinkState::Connected;
                        events.push(HdlcEvent::Connected(params));
                        self.pump();
                    }
                    Err(_) => self.fail(events, "invalid parameters in UA"),
                }
            }
            (LinkState::Connecting, Control::Dm { .. }) => {
                self.drop_link();
                events.push(HdlcEvent::Disconnected(DisconnectReason::Refused));
            }
            (LinkState::Disconnecting, Control::Ua { .. } | Control::Dm { .. }) => {
                self.drop_link();
                events.push(HdlcEvent::Disconnected(DisconnectReason::Requested));
            }
            (
                LinkState::Connected,
                Control::I {
                    send_seq, recv_seq, ..
                },
            ) => {
                if self.link.ack(recv_seq).is_err() {
                    return self.fail(events, "invalid N(R)");
                }
                match self.link.receive(send_seq, frame.segmented, &frame.info) {
                    Received::Complete(apdu) => events.push(HdlcEvent::Apdu(apdu)),
                    Received::TooLong => {
                        return self.fail(events, "APDU longer than the maximum");
                    }
                    Received::BadLlc => self.discarded += 1,
                    Received::Partial | Received::OutOfSequence => {}
                }
                if pf {
                    self.resume();
                }
            }
            (LinkState::Connected, Control::Rr { recv_seq, .. }) => {
                if self.link.ack(recv_seq).is_err() {
                    return self.fail(events, "invalid N(R)");
                }
                self.peer_busy = false;
                if pf {
                    self.resume();
                }
            }
            (LinkState::Connected, Control::Rnr { recv_seq, .. }) => {
                if self.link.ack(recv_seq).is_err() {
                    return self.fail(events, "invalid N(R)");
                }
                self.peer_busy = true;
                // Keep the response timer running: its expiry polls the server again.
                self.waiting = true;
            }
            (LinkState::Connected, Control::Dm { .. }) => {
                self.drop_link();
                events.push(HdlcEvent::Disconnected(DisconnectReason::ByPeer));
            }
            (LinkState::Connected, Control::Frmr { .. }) => {
                self.send_disc();
                self.drop_link();
                events.push(HdlcEvent::Disconnected(DisconnectReason::FrameRejected {
                    info: frame.info,
                }));
            }
            _ => self.discarded += 1,
        }
    }

    /// The server has handed the poll back: repeat a lost frame, or carry on.
    fn resume(&mut self) {
        let repeat = if self.link.retransmit && !self.peer_busy {
            self.link.next_i_frame(true)
        } else {
            None
        };
        if let Some(frame) = repeat {
            emit(&mut self.transmit, &frame);
            self.waiting = true;
            return;
        }
        self.pump();
    }
}

/// FRMR reason bits (third byte of the FRMR information field).
const FRMR_W_UNDEFINED_CONTROL: u8 = 0x01;
const FRMR_X_INFO_NOT_PERMITTED: u8 = 0x02;
const FRMR_Y_INFO_TOO_LONG: u8 = 0x04;
const FRMR_Z_INVALID_NR: u8 = 0x08;

/// The server (secondary station) of an HDLC link. It speaks only when polled.
#[derive(Debug)]
pub struct HdlcServer {
    config: ServerConfig,
    state: LinkState,
    link: Sequencing,
    extractor: FrameExtractor,
    transmit: VecDeque<Vec<u8>>,
    /// The client has polled and not yet had the final answer.
    has_poll: bool,
    /// A complete APDU arrived with the poll: the answer waits for the application's response.
    holding_for_response: bool,
    peer_busy: bool,
    /// In frame-reject condition: the FRMR information field, repeated until SNRM or DISC.
    rejected: Option<Vec<u8>>,
    discarded: u64,
}

impl HdlcServer {
    pub fn new(config: ServerConfig) -> Result<Self, LinkError> {
        check_config(
            &[config.server_address],
            &config.limits,
            config.max_apdu_len,
        )?;
        let link = Sequencing::new(
            config.server_address,
            HdlcAddress::client(0),
            LinkParameters::default(),
            LLC_RESPONSE,
            LLC_COMMAND,
            config.max_apdu_len,
        );
        Ok(HdlcServer {
            config,
            state: LinkState::Disconnected,
            link,
            extractor: FrameExtractor::new(),
            transmit: VecDeque::new(),
            has_poll: false,
            holding_for_response: false,
            peer_busy: false,
            rejected: None,
            discarded: 0,
        })
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The negotiated parameters while connected, from the server's point of view.
    pub fn parameters(&self) -> Option<LinkParameters> {
        (self.state == LinkState::Connected).then_some(self.link.params)
    }

    /// The connected client's SAP.
    pub fn client_sap(&self) -> Option<u8> {
        match (self.state, self.link.peer) {
            (LinkState::Connected, HdlcAddress::One(sap)) => Some(sap),
            _ => None,
        }
    }

    /// Received frames dropped: bad HCS/FCS, other addresses, APDUs without LLC header.
    pub fn discarded_frames(&self) -> u64 {
        self.discarded
    }

    /// Queues a response APDU; it goes out when the client polls (at once if the request that
    /// needs it carried the poll, as usual).
    pub fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), LinkError> {
        if self.state != LinkState::Connected {
            return Err(LinkError::NotConnected);
        }
        self.link.queue_apdu(apdu);
        self.holding_for_response = false;
        self.pump();
        Ok(())
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Takes bytes received from the client.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<HdlcEvent> {
        self.extractor.push(bytes);
        let mut events = Vec::new();
        while let Some(result) = self.extractor.next_frame() {
            match result {
                Ok(frame) => self.handle(frame, &mut events),
                Err(_) => self.discarded += 1,
            }
        }
        events
    }

    /// The inactivity timer expired: the link is dropped without a word (IEC 62056-46).
    pub fn on_inactivity_timeout(&mut self) -> Vec<HdlcEvent> {
        if self.state != LinkState::Connected {
            return Vec::new();
        }
        self.drop_link();
        vec![HdlcEvent::Disconnected(DisconnectReason::Inactivity)]
    }

    fn drop_link(&mut self) {
        self.state = LinkState::Disconnected;
        self.has_poll = false;
        self.holding_for_response = false;
        self.peer_busy = false;
        self.rejected = None;
        self.link.outgoing.clear();
        self.link.unacked = None;
        self.link.incoming = Vec::new();
        self.link.receiving = false;
    }

    /// Answers a frame outside the link (or to another client) on its own addresses.
    fn reply_to(&mut self, frame: &HdlcFrame, control: Control, info: Vec<u8>) {
        let reply = HdlcFrame {
            segmented: false,
            destination: frame.source,
            source: frame.destination,
            control,
            info,
        };
        emit(&mut self.transmit, &reply);
    }

    fn handle(&mut self, frame: HdlcFrame, events: &mut Vec<HdlcEvent>) {
        if !frame.destination.same_station(&self.config.server_address)
            || !matches!(frame.source, HdlcAddress::One(_))
        {
            self.discarded += 1;
            return;
        }
        let pf = frame.control.pf();
        if let Control::Snrm { .. } = frame.control {
            match LinkParameters::decode(&frame.info) {
                Ok(offer) => {
                    if self.state == LinkState::Connected {
                        events.push(HdlcEvent::Disconnected(DisconnectReason::ByPeer));
                    }
                    self.drop_link();
                    let params = self.config.limits.negotiate(&offer);
                    self.link = Sequencing::new(
                        frame.destination,
                        frame.source,
                        params,
                        LLC_RESPONSE,
                        LLC_COMMAND,
                        self.config.max_apdu_len,
                    );
                    self.state = LinkState::Connected;
                    self.reply_to(&frame, Control::Ua { pf: true }, params.encode());
                    events.push(HdlcEvent::Connected(params));
                }
                Err(_) => self.reply_to(&frame, Control::Dm { pf: true }, Vec::new()),
            }
            return;
        }
        let ours = self.state == LinkState::Connected && frame.source == self.link.peer;
        if !ours {
            // Disconnected mode: DISC and any poll are answered with DM.
            if pf || matches!(frame.control, Control::Disc { .. }) {
                self.reply_to(&frame, Control::Dm { pf: true }, Vec::new());
            }
            return;
        }
        if let Control::Disc { .. } = frame.control {
            let ua = self.link.frame(Control::Ua { pf: true }, false, Vec::new());
            emit(&mut self.transmit, &ua);
            self.drop_link();
            events.push(HdlcEvent::Disconnected(DisconnectReason::ByPeer));
            return;
        }
        if pf {
            self.has_poll = true;
        }
        if self.rejected.is_some() {
            self.pump();
            return;
        }
        match frame.control {
            Control::I {
                send_seq, recv_seq, ..
            } => {
                if frame.info.len() > usize::from(self.link.params.max_info_rx) {
                    return self.reject(&frame, FRMR_Y_INFO_TOO_LONG);
                }
                if self.link.ack(recv_seq).is_err() {
                    return self.reject(&frame, FRMR_Z_INVALID_NR);
                }
                match self.link.receive(send_seq, frame.segmented, &frame.info) {
                    Received::Complete(apdu) => {
                        events.push(HdlcEvent::Apdu(apdu));
                        self.holding_for_response = pf;
                    }
                    Received::TooLong => return self.reject(&frame, FRMR_Y_INFO_TOO_LONG),
                    Received::BadLlc => self.discarded += 1,
                    Received::Partial | Received::OutOfSequence => {}
                }
            }
            Control::Rr { recv_seq, .. } | Control::Rnr { recv_seq, .. } => {
                if !frame.info.is_empty() {
                    return self.reject(&frame, FRMR_X_INFO_NOT_PERMITTED);
                }
                if self.link.ack(recv_seq).is_err() {
                    return self.reject(&frame, FRMR_Z_INVALID_NR);
                }
                self.peer_busy = matches!(frame.control, Control::Rnr { .. });
                if pf {
                    self.holding_for_response = false;
                }
            }
            Control::Ui { .. } => events.push(HdlcEvent::UnnumberedInformation(frame.info)),
            Control::Unknown(_) => return self.reject(&frame, FRMR_W_UNDEFINED_CONTROL),
            // Responses sent to a secondary: nothing to do.
            Control::Ua { .. } | Control::Dm { .. } | Control::Frmr { .. } => {
                self.discarded += 1;
            }
            Control::Snrm { .. } | Control::Disc { .. } => {}
        }
        self.pump();
    }

    /// Enters frame-reject condition: FRMR now (if polled) and to every poll until SNRM or DISC.
    fn reject(&mut self, frame: &HdlcFrame, reason: u8) {
        let control = frame.control.to_byte().unwrap_or_default();
        let state = (self.link.vr << 5) | (self.link.vs << 1);
        self.rejected = Some(vec![control, state, reason]);
        self.pump();
    }

    /// Answers the poll, if the server holds it.
    fn pump(&mut self) {
        if self.state != LinkState::Connected || !self.has_poll {
            return;
        }
        if let Some(info) = &self.rejected {
            let frmr = self
                .link
                .frame(Control::Frmr { pf: true }, false, info.clone());
            emit(&mut self.transmit, &frmr);
            self.has_poll = false;
            return;
        }
        let repeat = if self.link.retransmit && !self.peer_busy {
            self.link.next_i_frame(true)
        } else {
            None
        };
        if let Some(frame) = repeat {
            emit(&mut self.transmit, &frame);
            self.has_poll = false;
            return;
        }
        if self.link.receiving {
            // Acknowledge the segment and ask for the next.
            let rr = self.link.rr(true);
            emit(&mut self.transmit, &rr);
            self.has_poll = false;
            return;
        }
        let next = if self.peer_busy {
            None
        } else {
            self.link.next_i_frame(true)
        };
        if let Some(frame) = next {
            emit(&mut self.transmit, &frame);
            self.has_poll = false;
            self.holding_for_response = false;
            return;
        }
        if self.holding_for_response {
            return;
        }
        let rr = self.link.rr(true);
        emit(&mut self.transmit, &rr);
        self.has_poll = false;
    }
}
