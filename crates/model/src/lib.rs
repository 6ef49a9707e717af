//! The shared vocabulary of Urja: meter identity and the readings, events and commands that
//! pass between the head-end, the MDM and the engines. No I/O here.
