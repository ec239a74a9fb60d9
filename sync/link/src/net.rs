//! The sync link's HTTPS: a server that knows which site's certificate each request came with, and
//! a client that trusts only the province's CA (pinned by fingerprint before a site has it).
//! HTTP/1.1 on hyper over tokio-rustls; bodies are read whole, within a limit, before a handler runs.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::TokioIo;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    server::WebPkiClientVerifier,
    DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::{TcpListener, TcpStream};

use crate::{ca, gate};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the PEM");
    Ok(chain)
}

fn roots(ca_pem: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots.add(c).context("the CA certificate")?;
    }
    Ok(roots)
}

/// A server presenting `cert_pem` (with the CA after it), asking clients for a certificate from
/// `ca_pem` but also accepting clients without one (enrolment; every other route requires one).
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
        .allow_unauthenticated()
        .build()
        .context("client verifier")?;
    let mut chain = certs(cert_pem)?;
    chain.extend(certs(ca_pem)?);
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    Ok(Arc::new(config))
}

/// A client that trusts only `ca_pem`, presenting `identity` (certificate and key PEM) if given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                certs(cert)?,
                PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| anyhow::anyhow!("key: {e}"))?,
            )
            .context("the site certificate and key do not match")?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A client for enrolment: it has no CA yet, so it accepts the server only if the chain it presents
/// contains a CA with `fingerprint` (from the enrolment token) and the server's certificate verifies
/// against that CA.
pub fn pinned_client_config(fingerprint: &str) -> Arc<rustls::ClientConfig> {
    let verifier = PinnedCa { fingerprint: fingerprint.to_ascii_uppercase(), provider: provider() };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth());
    // The default protocol versions always exist for the ring provider.
    Arc::new(config.unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3")))
}

#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| ca::fingerprint(c) == self.fingerprint)
            .ok_or_else(|| rustls::Error::General("the server's CA is not the one in the token".into()))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A request as handlers see it: read whole, with the client's certificate if it showed one.
#[derive(Debug)]
pub struct Req {
    pub method: http::Method,
    pub path: String,
    pub body: Bytes,
    /// The client's certificate (verified against the CA by the TLS layer).
    pub peer_cert: Option<Vec<u8>>,
    pub peer: SocketAddr,
}

/// An answer: status, content type, body.
pub type Resp = (u16, &'static str, Vec<u8>);

/// What serves requests.
pub type Handler = Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// The sync listener's caps: connections at once, from one address (sites behind one carrier's
/// NAT share one), and the idle time after which a connection is closed.
pub const LIMITS: gate::Limits = gate::Limits {
    total: 256,
    per_address: 32,
    idle: Duration::from_secs(30),
    header: Duration::from_secs(10),
};

/// How long a request's body may take: a site (with its certificate) sends batches of up to
/// `max_body`; anyone else only enrols, with a few hundred bytes.
const BODY_TIME_SITE: Duration = Duration::from_secs(120);
const BODY_TIME_ANONYMOUS: Duration = Duration::from_secs(10);

/// Serves HTTPS on `listener` for ever through `gate`; bodies over `max_body` are refused with 413.
/// A connection has 10 s for TLS and for each request's headers, and 120 s for a body (10 s without
/// a site's certificate).
pub async fn serve(
    listener: TcpListener,
    gate: Arc<gate::Gate>,
    tls: Arc<rustls::ServerConfig>,
    max_body: usize,
    handler: Handler,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = gate.accept(&listener).await;
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(LIMITS.header, acceptor.accept(stream)).await else {
                return;
            };
            let peer_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (handler, peer_cert) = (handler.clone(), peer_cert.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let body = Limited::new(body, max_body).collect();
                    let time = if peer_cert.is_some() { BODY_TIME_SITE } else { BODY_TIME_ANONYMOUS };
                    let (status, kind, bytes) = match tokio::time::timeout(time, body).await {
                        Ok(Ok(body)) => {
                            let req = Req {
                                method: parts.method,
                                path: parts.uri.path().to_owned(),
                                body: body.to_bytes(),
                                peer_cert,
                                peer,
                            };
                            handler(req).await
                        }
                        Ok(Err(_)) => {
                            (413, "text/plain", b"the request is too large or was cut short\n".to_vec())
                        }
                        Err(_) => (408, "text/plain", b"the request took too long\n".to_vec()),
                    };
                    Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, kind)
                        .body(Full::new(Bytes::from(bytes)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(LIMITS.header)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Who a request goes to: an address, the name its certificate must carry, and optionally the
/// fingerprint that certificate must have (the province pins each site's last issued certificate).
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub addr: &'a str,
    pub name: &'a str,
    pub pin: Option<&'a str>,
}

impl<'a> Peer<'a> {
    /// The provincial server at `addr`.
    pub fn province(addr: &'a str) -> Peer<'a> {
        Peer { addr, name: ca::PROVINCE_NAME, pin: None }
    }
}

/// A TLS connection to `peer`, its certificate checked for `peer.name` (and `peer.pin`).
pub async fn connect(
    peer: Peer<'_>,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let addr = peer.addr;
    let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot reach {addr}"))?;
    // Small writes go at once: a tunnel carries phones' requests, and Nagle's wait for an ACK
    // (delayed up to 40 ms by the peer) would hold each of them.
    let _ = stream.set_nodelay(true);
    let name = ServerName::try_from(peer.name.to_owned()).context("server name")?;
    let tls = tokio_rustls::TlsConnector::from(tls).connect(name, stream).await.context("TLS")?;
    if let Some(pin) = peer.pin {
        let shown = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| ca::fingerprint(c));
        anyhow::ensure!(
            shown.as_deref() == Some(pin),
            "{addr} shows a certificate for {} that is not the last one issued",
            peer.name
        );
    }
    Ok(tls)
}

/// POSTs `body` to `https://<peer.addr><path>` with `tls`, checking the server's certificate for
/// `peer.name` (and `peer.pin` before anything is sent); the status and the whole answer (at most
/// `max_answer`).
pub async fn post(
    peer: Peer<'_>,
    tls: Arc<rustls::ClientConfig>,
    path: &str,
    body: Vec<u8>,
    max_answer: usize,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    call(peer, tls, (http::Method::POST, path, body), max_answer, timeout).await
}

/// [`post`] with any method.
pub async fn call(
    peer: Peer<'_>,
    tls: Arc<rustls::ClientConfig>,
    (method, path, body): (http::Method, &str, Vec<u8>),
    max_answer: usize,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    let work = async {
        let tls = connect(peer, tls).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, peer.name)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)))?;
        let res = sender.send_request(req).await.context("the request failed")?;
        let status = res.status().as_u16();
        let bytes = Limited::new(res.into_body(), max_answer)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("the answer was cut short or too large: {e}"))?
            .to_bytes();
        anyhow::Ok((status, bytes))
    };
    tokio::time::timeout(timeout, work).await.context("no answer in time")?
}

/// Whether the verified certificate `der` is valid for the DNS name `name`.
pub fn cert_names(der: &[u8], name: &str) -> bool {
    let der = CertificateDer::from(der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else { return false };
    let Ok(name) = ServerName::try_from(name.to_owned()) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The DNS names a certificate carries (its subject alternative names).
pub fn cert_dns_names(der: &[u8]) -> Vec<String> {
    let der = CertificateDer::from(der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else { return Vec::new() };
    cert.valid_dns_names().map(str::to_owned).collect()
}

/// Whether the verified client certificate `der` names site `site_id`.
pub fn cert_names_site(der: &[u8], site_id: &str) -> bool {
    cert_names(der, &ca::site_name(site_id))
}
