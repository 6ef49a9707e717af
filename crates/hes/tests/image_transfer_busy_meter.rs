//! A meter that needs time to verify or activate a firmware image answers temporary-failure and
//! reports progress in image_transfer_status; the head-end polls it instead of giving up.
//! The meter here is our own `dlms` server with a small image transfer object, over real TCP.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use dlms::Data;
use dlms::apdu::{
    ActionResult, AttributeDescriptor, DataAccessResult, MethodDescriptor, SelectiveAccess,
};
use dlms::association::client::{ClientConfig, ClientSecurityState};
use dlms::association::server::{AssociationConfig, MeterSecurityState, Server, ServerConfig};
use dlms::association::{Authentication, CosemObjects, RequestContext};
use dlms::wrapper::{WrapperDecoder, encode};
use hes::{Session, SessionConfig, SessionError, Transport, operations};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Image transfer (IC 18) whose verify and activate each take one status poll to complete.
struct BusyImageMeter {
    status: u8,
    blocks: u32,
    verify_outcome: u8,
}

impl CosemObjects for BusyImageMeter {
    fn get(
        &mut self,
        _: &RequestContext,
        a: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        match (a.class_id, a.attribute_id) {
            (18, 2) => Ok(Data::DoubleLongUnsigned(200)),
            (18, 5) => Ok(Data::Boolean(true)),
            (18, 6) => {
                // Work finishes between polls: "verification initiated" → outcome,
                // "activation initiated" → successful.
                let now = self.status;
                self.status = match now {
                    2 => self.verify_outcome,
                    5 => 6,
                    s => s,
                };
                Ok(Data::Enum(now))
            }
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn set(
        &mut self,
        _: &RequestContext,
        _: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
        _: Data,
    ) -> Result<(), DataAccessResult> {
        Err(DataAccessResult::ReadWriteDenied)
    }

    fn action(
        &mut self,
        _: &RequestContext,
        m: &MethodDescriptor,
        _: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        match m.method_id {
            1 => self.status = 1,
            2 => self.blocks += 1,
            3 => {
                self.status = 2;
                return Err(ActionResult::TemporaryFailure);
            }
            4 if self.status == 3 => {
                self.status = 5;
                return Err(ActionResult::TemporaryFailure);
            }
            _ => return Err(ActionResult::OtherReason),
        }
        Ok(None)
    }
}

/// Serves one connection with the wrapper and the server association; returns the meter.
async fn serve_one(listener: TcpListener, meter: Arc<Mutex<BusyImageMeter>>) {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let config = ServerConfig {
        system_title: *b"URJTEST1",
        associations: vec![AssociationConfig::public()],
        conformance: ServerConfig::IS15959_CONFORMANCE,
        max_receive_pdu_size: 1024,
    };
    let mut server = Server::new(config, MeterSecurityState::new(1));
    let mut decoder = WrapperDecoder::new();
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(frame) = decoder.next_frame().expect("well-formed frames") {
            let out = {
                let mut objects = meter.lock().unwrap();
                server.on_apdu(
                    frame.source,
                    &frame.apdu,
                    Utc::now(),
                    &[7; 16],
                    &mut *objects,
                )
            };
            if let Some(response) = out.response {
                let bytes = encode(frame.destination, frame.source, &response).expect("fits");
                socket.write_all(&bytes).await.expect("write");
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

async fn transfer_to(verify_outcome: u8) -> (Result<(), SessionError>, u8, u32) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let meter = Arc::new(Mutex::new(BusyImageMeter {
        status: 0,
        blocks: 0,
        verify_outcome,
    }));
    let server = tokio::spawn(serve_one(listener, meter.clone()));
    let config = SessionConfig::new(
        address,
        Transport::Wrapper,
        ClientConfig::new(16, Authentication::None, None),
    );
    let mut counters = ClientSecurityState::default();
    let mut session = Session::open(&config, &mut counters)
        .await
        .expect("associate");
    let image = vec![0x5A; 1000];
    let result = operations::transfer_image(&mut session, b"FW-2", &image, |_, _| {}).await;
    session.release(&mut counters).await.expect("release");
    server.await.expect("server task");
    let m = meter.lock().unwrap();
    (result, m.status, m.blocks)
}

#[tokio::test]
async fn polls_a_busy_meter_until_verified_and_activated() {
    let (result, status, blocks) = transfer_to(3).await;
    result.expect("transfer completes once the meter reports success");
    assert_eq!(blocks, 5, "1000 bytes in 200-byte blocks");
    assert_eq!(status, 6, "activation successful");
}

#[tokio::test]
async fn a_failed_verification_reported_by_status_is_an_error() {
    let (result, status, _) = transfer_to(4).await;
    assert!(
        matches!(
            result,
            Err(SessionError::ActionFailed(ActionResult::OtherReason))
        ),
        "{result:?}"
    );
    assert_eq!(status, 4, "verification failed; activation never attempted");
}
