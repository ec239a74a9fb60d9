//! Fuzz target: the PDU decoder must return a value or an error for any input, never panic — both for
//! arbitrary text (as it arrives from the modem) and for arbitrary bytes as hex.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_sms::pdu;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pdu::decode(text);
    }
    let _ = pdu::decode(&pdu::to_hex(data));
});
