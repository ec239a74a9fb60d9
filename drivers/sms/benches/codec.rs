//! PDU codec throughput (`cargo bench -p outpost-sms --bench codec`): encoding and decoding the
//! messages the box sends most (a reminder in GSM 7-bit, a Vietnamese test result in UCS-2, two parts).

use std::time::Instant;

use outpost_sms::pdu::{decode, encode_submit, SubmitOptions};

fn measure(name: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let per = t.elapsed() / n;
    println!("{name}: {:.2} µs each, {:.0}/s", per.as_secs_f64() * 1e6, 1.0 / per.as_secs_f64());
}

fn main() {
    let reminder = "Outpost: Ban chua khai bao y te luc 08:00. Vui long khai bao ngay tai http://outpost.local:8080/d/0123456789abcdef0123456789abcdef";
    let result = "Kết quả xét nghiệm lần 2 của bạn: ÂM TÍNH. Tiếp tục cách ly đến hết ngày 04/12. Mọi thắc mắc xin gọi trạm y tế.";
    let opts = SubmitOptions::default();
    measure("encode GSM 7-bit reminder (1 part)", 100_000, || {
        std::hint::black_box(encode_submit("0905123456", std::hint::black_box(reminder), opts).ok());
    });
    measure("encode UCS-2 Vietnamese result (2 parts)", 100_000, || {
        std::hint::black_box(encode_submit("0905123456", std::hint::black_box(result), opts).ok());
    });
    let gsm = encode_submit("0905123456", reminder, opts).expect("encode");
    let ucs = encode_submit("0905123456", result, opts).expect("encode");
    measure("decode GSM 7-bit part", 100_000, || {
        std::hint::black_box(decode(std::hint::black_box(&gsm[0].hex)).ok());
    });
    measure("decode UCS-2 part", 100_000, || {
        std::hint::black_box(decode(std::hint::black_box(&ucs[0].hex)).ok());
    });
}
