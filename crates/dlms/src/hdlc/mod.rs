//! IEC 62056-46 HDLC (frame format type 3), sans-IO: the frame codec ([`frame`]), a streaming
//! frame extractor ([`stream`]), SNRM/UA parameter negotiation ([`params`]) and the client and
//! server link state machines ([`link`]).
//!
//! Everything here is "bytes in, bytes and events out": the caller owns the serial port or socket
//! and the timers.

pub mod frame;
pub mod link;
pub mod params;
pub mod stream;

pub use frame::{
    Control, FrameError, HdlcAddress, HdlcFrame, LLC_COMMAND, LLC_RESPONSE, decode_frame,
    encode_frame, fcs16,
};
pub use link::{
    ClientConfig, DisconnectReason, HdlcClient, HdlcEvent, HdlcServer, LinkError, LinkState,
    ServerConfig,
};
pub use params::LinkParameters;
pub use stream::FrameExtractor;
