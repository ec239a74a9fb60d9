//! The broker's front door: the ports devices connect to.
//!
//! rumqttd serves MQTT 3.1.1 and MQTT 5 from separate listeners and terminates no TLS we can hand a
//! certificate made at run time to. The box therefore runs both rumqttd servers on loopback ports of
//! its own and listens on the configured ports itself: it takes TLS off (8883), reads the CONNECT
//! packet's protocol level (4 for 3.1.1, 5 for 5) and joins the client to the matching server, bytes
//! passed through unchanged. A device configures one port whatever its MQTT version.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The loopback ports of the two rumqttd servers.
#[derive(Debug, Clone, Copy)]
pub struct Backends {
    pub v4: SocketAddr,
    pub v5: SocketAddr,
}

/// Connection counts, for the health page and `/metrics`.
#[derive(Debug, Default)]
pub struct FrontStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// TLS handshakes that failed (a device that does not trust the certificate, a port scan).
    pub tls_failed: AtomicU64,
    /// First packets that were not an MQTT 3.1.1 or 5 CONNECT.
    pub not_mqtt: AtomicU64,
    /// Logins with a wrong name or password.
    pub logins_refused: AtomicU64,
}

/// A snapshot of [`FrontStats`].
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct FrontCounts {
    pub open: u64,
    pub accepted: u64,
    pub tls_failed: u64,
    pub not_mqtt: u64,
    pub logins_refused: u64,
}

impl FrontStats {
    pub fn counts(&self) -> FrontCounts {
        FrontCounts {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            tls_failed: self.tls_failed.load(Ordering::Relaxed),
            not_mqtt: self.not_mqtt.load(Ordering::Relaxed),
            logins_refused: self.logins_refused.load(Ordering::Relaxed),
        }
    }
}

/// How long a new connection has to finish TLS and send its CONNECT.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// MQTT protocol versions a CONNECT can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// Reads the protocol level from the start of a CONNECT packet: `Ok(None)` if more bytes are needed,
/// `Err` if this is not an MQTT 3.1.1 or 5 CONNECT.
pub fn connect_version(buf: &[u8]) -> Result<Option<Version>, &'static str> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first != 0x10 {
        return Err("the first packet is not CONNECT");
    }
    // Remaining length: 1 to 4 bytes, 7 bits each, the high bit meaning "more".
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else { return Ok(None) };
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at == 5 {
            return Err("malformed remaining length");
        }
    }
    let (Some(&hi), Some(&lo)) = (buf.get(at), buf.get(at + 1)) else { return Ok(None) };
    let name_len = usize::from(u16::from_be_bytes([hi, lo]));
    if name_len != 4 {
        return Err("not the MQTT protocol name");
    }
    let Some(name) = buf.get(at + 2..at + 6) else { return Ok(None) };
    if name != b"MQTT" {
        return Err("not the MQTT protocol name");
    }
    match buf.get(at + 6) {
        None => Ok(None),
        Some(4) => Ok(Some(Version::V311)),
        Some(5) => Ok(Some(Version::V5)),
        Some(_) => Err("an MQTT version other than 3.1.1 and 5"),
    }
}

/// Accepts connections on `listener` for ever, each on its own task; with `tls`, TLS is taken off
/// first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    backends: Backends,
    stats: Arc<FrontStats>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "MQTT accept failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let tls = tls.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            stats.open.fetch_add(1, Ordering::Relaxed);
            match tls {
                None => join(stream, peer, backends, &stats).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => join(stream, peer, backends, &stats).await,
                    Ok(Err(error)) => {
                        stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, %error, "MQTT TLS handshake failed.");
                    }
                    Err(_) => {
                        stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads the CONNECT's protocol level, then joins `client` to the matching server until either side
/// closes.
async fn join<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    peer: SocketAddr,
    backends: Backends,
    stats: &FrontStats,
) {
    let mut head = Vec::with_capacity(64);
    let version = tokio::time::timeout(HANDSHAKE, async {
        let mut chunk = [0u8; 64];
        loop {
            match connect_version(&head) {
                Ok(Some(version)) => return Some(version),
                Ok(None) => {}
                Err(reason) => {
                    tracing::debug!(%peer, reason, "Not an MQTT connection.");
                    return None;
                }
            }
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()
    .flatten();
    let Some(version) = version else {
        if !head.is_empty() {
            stats.not_mqtt.fetch_add(1, Ordering::Relaxed);
        }
        return;
    };
    let backend = match version {
        Version::V311 => backends.v4,
        Version::V5 => backends.v5,
    };
    let mut server = match TcpStream::connect(backend).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, ?version, "The MQTT broker cannot be reached on loopback.");
            return;
        }
    };
    let _ = server.set_nodelay(true);
    if server.write_all(&head).await.is_err() {
        return;
    }
    // Either side closing ends both; errors here are a device going away.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_packet_names_its_version() {
        // CONNECT, remaining length 16, "MQTT", level 4.
        let v311 = [0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60];
        assert_eq!(connect_version(&v311), Ok(Some(Version::V311)));
        let mut v5 = v311;
        v5[8] = 5;
        assert_eq!(connect_version(&v5), Ok(Some(Version::V5)));
        // A two-byte remaining length.
        let long = [0x10, 0x80 | 20, 1, 0, 4, b'M', b'Q', b'T', b'T', 5];
        assert_eq!(connect_version(&long), Ok(Some(Version::V5)));
        for cut in 0..9 {
            assert_eq!(connect_version(&v311[..cut]), Ok(None), "{cut} bytes are not enough");
        }
        assert!(connect_version(b"GET / HTTP/1.1\r\n").is_err());
        assert!(connect_version(&[0x10, 12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3]).is_err());
        assert!(connect_version(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0]).is_err());
        let mut v3 = v311;
        v3[8] = 3;
        assert!(connect_version(&v3).is_err());
    }
}
