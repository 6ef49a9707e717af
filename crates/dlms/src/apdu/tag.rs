//! The first byte of every plaintext APDU this crate encodes (Green Book, xDLMS APDU tags), and
//! the CHOICE numbers of the GET/SET/ACTION services.

/// ACSE A-ASSOCIATE request ([APPLICATION 0], constructed).
pub const AARQ: u8 = 0x60;
/// ACSE A-ASSOCIATE response ([APPLICATION 1], constructed).
pub const AARE: u8 = 0x61;
/// ACSE A-RELEASE request ([APPLICATION 2], constructed).
pub const RLRQ: u8 = 0x62;
/// ACSE A-RELEASE response ([APPLICATION 3], constructed).
pub const RLRE: u8 = 0x63;
pub const INITIATE_REQUEST: u8 = 0x01;
pub const INITIATE_RESPONSE: u8 = 0x08;
pub const CONFIRMED_SERVICE_ERROR: u8 = 0x0E;
pub const DATA_NOTIFICATION: u8 = 0x0F;
pub const GET_REQUEST: u8 = 0xC0;
pub const SET_REQUEST: u8 = 0xC1;
pub const EVENT_NOTIFICATION_REQUEST: u8 = 0xC2;
pub const ACTION_REQUEST: u8 = 0xC3;
pub const GET_RESPONSE: u8 = 0xC4;
pub const SET_RESPONSE: u8 = 0xC5;
pub const ACTION_RESPONSE: u8 = 0xC7;
pub const EXCEPTION_RESPONSE: u8 = 0xD8;

/// Get-Request / Get-Response CHOICE: normal.
pub const GET_NORMAL: u8 = 1;
/// Get-Request-Next / Get-Response-With-Datablock.
pub const GET_NEXT_OR_DATABLOCK: u8 = 2;
/// Get-Request-With-List / Get-Response-With-List.
pub const GET_WITH_LIST: u8 = 3;

/// Set-Request-Normal / Set-Response-Normal.
pub const SET_NORMAL: u8 = 1;
/// Set-Request-With-First-Datablock / Set-Response-Datablock.
pub const SET_FIRST_DATABLOCK_OR_DATABLOCK: u8 = 2;
/// Set-Request-With-Datablock / Set-Response-Last-Datablock.
pub const SET_DATABLOCK_OR_LAST_DATABLOCK: u8 = 3;

/// Action-Request-Normal / Action-Response-Normal.
pub const ACTION_NORMAL: u8 = 1;
