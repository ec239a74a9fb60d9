//! `outpost-sms` — the SMS modem: everything that touches the serial line, and the pure codecs under it.
//!
//! - [`gsm7`]: the GSM 7-bit alphabet and septet packing (3GPP TS 23.038).
//! - [`pdu`]: SMS-SUBMIT encoding and SMS-DELIVER / SMS-STATUS-REPORT decoding (3GPP TS 23.040).
//! - [`at`]: the AT response line parser: final results, unsolicited results, prompts.
//! - [`engine`]: one AT command at a time over a byte stream, with deadlines and queued URCs.
//! - [`modem`]: the driver thread over `serialport`: init, send, receive, reports, recovery, health.
//! - [`sim`]: a modem simulator on a pseudo-terminal that misbehaves on demand, for tests and the demo.
//!
//! The codecs do no IO and never panic on input. This crate depends on no other workspace crate.

pub mod at;
pub mod engine;
pub mod gsm7;
pub mod modem;
pub mod pdu;
pub mod sim;
