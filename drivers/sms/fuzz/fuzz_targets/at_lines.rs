//! Fuzz target: the AT engine and line classifier must survive any bytes from the serial line — garbage,
//! cut lines, stray prompts — answering with errors or timeouts, never a panic.
#![no_main]

use std::{
    io::{self, Read, Write},
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use outpost_sms::{at, engine::Engine};

struct Line<'a> {
    data: &'a [u8],
}

impl Read for Line<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "end"));
        }
        let n = buf.len().min(self.data.len()).min(13);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    for line in String::from_utf8_lossy(data).split('\n') {
        let _ = at::classify(line, Some("+CMGR"));
        let _ = at::classify(line, None);
        let _ = at::registration(line);
        let _ = at::signal_dbm(line);
    }
    let mut e = Engine::new(Line { data });
    let _ = e.command("AT+CMGL=4", Some("+CMGL"), Duration::from_millis(1));
    let _ = e.send_pdu("00", 1, Duration::from_millis(1));
    let _ = e.poll(Duration::from_millis(1));
});
