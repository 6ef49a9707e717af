//! One DLMS session with one meter over TCP: connect, associate, GET/SET/ACTION, release.
//!
//! All protocol logic is in `dlms`; this file only moves bytes between the socket, the framing
//! layer (TCP wrapper or HDLC) and the client association, with a timeout on every wait.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use dlms::Data;
use dlms::apdu::{
    ActionResult, AttributeDescriptor, ConfirmedServiceError, DataAccessResult, ExceptionResponse,
    GetDataResult, MethodDescriptor, SelectiveAccess,
};
use dlms::association::Negotiated;
use dlms::association::client::{
    Client, ClientConfig, ClientError, ClientEvent, ClientSecurityState,
};
use dlms::hdlc::{HdlcAddress, HdlcClient, HdlcEvent};
use dlms::wrapper::WrapperDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Framing on the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// IEC 62056-47 TCP wrapper (wPorts are the SAPs).
    Wrapper,
    /// IEC 62056-46 HDLC over TCP, to the given physical (lower) HDLC address.
    Hdlc { physical_address: u16 },
}

/// Where a meter is and how to associate with it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub address: SocketAddr,
    pub transport: Transport,
    /// The meter's logical device (server SAP), 1 for the management logical device.
    pub server_sap: u16,
    pub client: ClientConfig,
    /// Longest wait for connecting and for each response.
    pub timeout: Duration,
    /// Longest time one operation may take in all (a GET with all its blocks, the whole
    /// association), so a meter that drips bytes cannot hold a session forever.
    pub operation_timeout: Duration,
}

impl SessionConfig {
    /// Per-response timeout 10 s, per-operation 2 min.
    pub fn new(address: SocketAddr, transport: Transport, client: ClientConfig) -> Self {
        SessionConfig {
            address,
            transport,
            server_sap: 1,
            client,
            timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(120),
        }
    }
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("connection to the meter failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from the meter within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("the meter closed the connection")]
    Closed,
    #[error("malformed frame from the meter: {0}")]
    Framing(String),
    #[error("{0}")]
    Association(#[from] ClientError),
    #[error("the meter refused the request: {0:?}")]
    Refused(DataAccessResult),
    #[error("the meter did not carry out the action: {0:?}")]
    ActionFailed(ActionResult),
    #[error("the meter answered with an exception: {0:?}")]
    Exception(ExceptionResponse),
    #[error("the meter could not serve the request: {0:?}")]
    ServiceError(ConfirmedServiceError),
    #[error("unexpected answer from the meter: {0}")]
    Unexpected(String),
    /// The meter refused a configuration write or a command; `what` says which.
    #[error("the meter refused to {what}: {reason:?}")]
    CommandRefused { what: &'static str, reason: Refusal },
    /// The request was not sent: its parameters are out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Why the meter refused a write (SET) or a method (ACTION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Set(DataAccessResult),
    Action(ActionResult),
}

enum Framing {
    Wrapper {
        decoder: WrapperDecoder,
        client_sap: u16,
        server_sap: u16,
    },
    Hdlc(Box<HdlcClient>),
}

/// An open, associated session. Drop it to abandon the connection, or [`Session::release`] it.
pub struct Session {
    stream: TcpStream,
    framing: Framing,
    client: Client,
    timeout: Duration,
    operation_timeout: Duration,
    /// Receive buffer, reused for every read.
    read_buf: Box<[u8; READ_BUF_LEN]>,
}

const READ_BUF_LEN: usize = 4096;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.stream.peer_addr().ok())
            .field("client_sap", &self.client.config().client_sap)
            .field("state", &self.client.state())
            .finish()
    }
}

impl Session {
    /// Connects and associates (with HLS pass 3/4 where configured).
    ///
    /// `security` holds the client's invocation counter and the meter's last accepted counter.
    /// It is advanced past every counter this attempt used, **whether or not it succeeds**, so a
    /// retry never reuses a GCM nonce and the meter never sees a replay. Persist it.
    pub async fn open(
        config: &SessionConfig,
        security: &mut ClientSecurityState,
    ) -> Result<Session, SessionError> {
        let mut session = Self::connect(config, security.clone()).await?;
        let associated = session.associate().await;
        *security = session.client.security_state().clone();
        associated.map(|()| session)
    }

    async fn connect(
        config: &SessionConfig,
        security: ClientSecurityState,
    ) -> Result<Session, SessionError> {
        let stream = tokio::time::timeout(config.timeout, TcpStream::connect(config.address))
            .await
            .map_err(|_| SessionError::Timeout(config.timeout, "connect"))?
            .map_err(|source| SessionError::Connect {
                address: config.address,
                source,
            })?;
        stream.set_nodelay(true)?;
        let client_sap = config.client.client_sap;
        let framing = match config.transport {
            Transport::Wrapper => Framing::Wrapper {
                decoder: WrapperDecoder::new(),
                client_sap,
                server_sap: config.server_sap,
            },
            Transport::Hdlc { physical_address } => {
                let sap = u8::try_from(client_sap).map_err(|_| {
                    SessionError::Unexpected(format!("client SAP {client_sap} does not fit HDLC"))
                })?;
                let address = HdlcAddress::server(config.server_sap, physical_address);
                let link = HdlcClient::new(dlms::hdlc::ClientConfig::new(sap, address))
                    .map_err(|e| SessionError::Framing(e.to_string()))?;
                Framing::Hdlc(Box::new(link))
            }
        };
        let mut session = Session {
            stream,
            framing,
            client: Client::new(config.client.clone(), security),
            timeout: config.timeout,
            operation_timeout: config.operation_timeout,
            read_buf: Box::new([0; READ_BUF_LEN]),
        };
        session.connect_link().await?;
        Ok(session)
    }

    async fn associate(&mut self) -> Result<(), SessionError> {
        let mut challenge = [0u8; 16];
        getrandom::fill(&mut challenge).map_err(|e| {
            SessionError::Unexpected(format!("no randomness for the challenge: {e}"))
        })?;
        let aarq = self.client.associate(&challenge)?;
        match self.exchange(aarq, "association").await? {
            ClientEvent::Associated(_) => Ok(()),
            other => Err(SessionError::Unexpected(format!(
                "{other:?} while associating"
            ))),
        }
    }

    /// What the meter agreed to (conformance, max PDU size).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.client.negotiated()
    }

    /// The counters as they stand now (persist them if the session is abandoned).
    pub fn security_state(&self) -> &ClientSecurityState {
        self.client.security_state()
    }

    /// Reads one attribute.
    pub async fn get(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    ) -> Result<Data, SessionError> {
        let request = self.client.get(attribute, access)?;
        match self.exchange(request, "get").await? {
            ClientEvent::Value { result, .. } => data_of(result),
            other => Err(unexpected(other)),
        }
    }

    /// Reads several attributes in one request; each may fail on its own.
    pub async fn get_with_list(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    ) -> Result<Vec<GetDataResult>, SessionError> {
        let request = self.client.get_with_list(items)?;
        match self.exchange(request, "get with list").await? {
            ClientEvent::Values { results, .. } => Ok(results),
            other => Err(unexpected(other)),
        }
    }

    /// Writes one attribute (in blocks when it exceeds the meter's PDU size).
    pub async fn set(
        &mut self,
        attribute: AttributeDescriptor,
        value: Data,
    ) -> Result<(), SessionError> {
        let request = self.client.set(attribute, None, value)?;
        match self.exchange(request, "set").await? {
            ClientEvent::SetResult {
                result: DataAccessResult::Success,
                ..
            } => Ok(()),
            ClientEvent::SetResult { result, .. } => Err(SessionError::Refused(result)),
            other => Err(unexpected(other)),
        }
    }

    /// Invokes a method; returns its return data, if any.
    pub async fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, SessionError> {
        let request = self.client.action(method, parameters)?;
        match self.exchange(request, "action").await? {
            ClientEvent::ActionResult {
                result: ActionResult::Success,
                return_data,
                ..
            } => return_data.map(data_of).transpose(),
            ClientEvent::ActionResult { result, .. } => Err(SessionError::ActionFailed(result)),
            other => Err(unexpected(other)),
        }
    }

    /// Releases the association (RLRQ/RLRE), closes the link and the connection, and leaves in
    /// `security` the counters to persist (advanced whatever the outcome).
    pub async fn release(mut self, security: &mut ClientSecurityState) -> Result<(), SessionError> {
        let released = self.release_link().await;
        *security = self.client.security_state().clone();
        released
    }

    async fn release_link(&mut self) -> Result<(), SessionError> {
        let rlrq = self.client.release()?;
        match self.exchange(rlrq, "release").await? {
            ClientEvent::Released => {}
            other => return Err(unexpected(other)),
        }
        if let Framing::Hdlc(link) = &mut self.framing {
            link.disconnect();
            self.flush_link().await?;
            // The UA (or DM) answering DISC; the link is down whichever arrives.
            let _ = self.next_link_events("disconnect").await;
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Sends a request and feeds responses to the client until it yields an event, sending
    /// whatever follow-ups it asks for (HLS pass 3, GET-next, next SET block).
    async fn exchange(
        &mut self,
        request: Vec<u8>,
        what: &'static str,
    ) -> Result<ClientEvent, SessionError> {
        let limit = self.operation_timeout;
        tokio::time::timeout(limit, self.exchange_within(request, what))
            .await
            .map_err(|_| SessionError::Timeout(limit, what))?
    }

    async fn exchange_within(
        &mut self,
        request: Vec<u8>,
        what: &'static str,
    ) -> Result<ClientEvent, SessionError> {
        self.send_apdu(&request).await?;
        loop {
            let apdu = self.recv_apdu(what).await?;
            let output = self.client.on_apdu(&apdu, Utc::now())?;
            if let Some(next) = output.send {
                self.send_apdu(&next).await?;
            }
            match output.event {
                None => continue,
                Some(ClientEvent::Notification(n)) => {
                    tracing::debug!(?n.system_title, "push received inside a session, ignored");
                }
                Some(ClientEvent::Exception(e)) => return Err(SessionError::Exception(e)),
                Some(ClientEvent::ServiceError(e)) => return Err(SessionError::ServiceError(e)),
                Some(event) => return Ok(event),
            }
        }
    }

    async fn connect_link(&mut self) -> Result<(), SessionError> {
        let Framing::Hdlc(link) = &mut self.framing else {
            return Ok(());
        };
        link.connect();
        self.flush_link().await?;
        loop {
            for event in self.next_link_events("HDLC connect").await? {
                match event {
                    HdlcEvent::Connected(_) => return Ok(()),
                    HdlcEvent::Disconnected(reason) => {
                        return Err(SessionError::Framing(format!(
                            "HDLC link refused: {reason:?}"
                        )));
                    }
                    _ => {}
                }
            }
        }
    }

    async fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), SessionError> {
        match &mut self.framing {
            Framing::Wrapper {
                client_sap,
                server_sap,
                ..
            } => {
                let frame = dlms::wrapper::encode(*client_sap, *server_sap, apdu)
                    .map_err(|e| SessionError::Framing(e.to_string()))?;
                self.stream.write_all(&frame).await?;
            }
            Framing::Hdlc(link) => {
                link.send_apdu(apdu)
                    .map_err(|e| SessionError::Framing(e.to_string()))?;
                self.flush_link().await?;
            }
        }
        Ok(())
    }

    /// Writes every frame the HDLC link has queued.
    async fn flush_link(&mut self) -> Result<(), SessionError> {
        if let Framing::Hdlc(link) = &mut self.framing {
            while let Some(frame) = link.poll_transmit() {
                self.stream.write_all(&frame).await?;
            }
        }
        Ok(())
    }

    async fn recv_apdu(&mut self, what: &'static str) -> Result<Vec<u8>, SessionError> {
        loop {
            if let Framing::Wrapper { decoder, .. } = &mut self.framing {
                if let Some(frame) = decoder
                    .next_frame()
                    .map_err(|e| SessionError::Framing(e.to_string()))?
                {
                    return Ok(frame.apdu);
                }
                let n = self.read_some(what).await?;
                if let Framing::Wrapper { decoder, .. } = &mut self.framing {
                    decoder.push(&self.read_buf[..n]);
                }
                continue;
            }
            for event in self.next_link_events(what).await? {
                match event {
                    HdlcEvent::Apdu(apdu) => return Ok(apdu),
                    HdlcEvent::Disconnected(reason) => {
                        return Err(SessionError::Framing(format!("HDLC link lost: {reason:?}")));
                    }
                    _ => {}
                }
            }
        }
    }

    /// HDLC: reads until the link reports something (answering RR polls on the way); a
    /// response timeout is handed to the link, which retries or gives up.
    async fn next_link_events(
        &mut self,
        what: &'static str,
    ) -> Result<Vec<HdlcEvent>, SessionError> {
        loop {
            let read = tokio::time::timeout(self.timeout, self.read_raw()).await;
            let Framing::Hdlc(link) = &mut self.framing else {
                return Ok(Vec::new());
            };
            let events = match read {
                Ok(n) => link.push(&self.read_buf[..n?]),
                Err(_) => {
                    tracing::debug!(what, "HDLC response timeout");
                    link.on_timeout()
                }
            };
            self.flush_link().await?;
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }

    /// Reads once, with the response timeout; the bytes are `self.read_buf[..n]`.
    async fn read_some(&mut self, what: &'static str) -> Result<usize, SessionError> {
        tokio::time::timeout(self.timeout, self.read_raw())
            .await
            .map_err(|_| SessionError::Timeout(self.timeout, what))?
    }

    /// Reads once into `self.read_buf`, returning how many bytes arrived.
    async fn read_raw(&mut self) -> Result<usize, SessionError> {
        match self.stream.read(&mut self.read_buf[..]).await? {
            0 => Err(SessionError::Closed),
            n => Ok(n),
        }
    }
}

fn data_of(result: GetDataResult) -> Result<Data, SessionError> {
    match result {
        GetDataResult::Data(data) => Ok(data),
        GetDataResult::Error(e) => Err(SessionError::Refused(e)),
    }
}

fn unexpected(event: ClientEvent) -> SessionError {
    SessionError::Unexpected(format!("{event:?}"))
}
