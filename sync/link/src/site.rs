//! A site's end of the link: enrolment with the province's one-time token (the site's key is made
//! here and never leaves it), what a box keeps of it, and [`SiteLink`] — the site's pushes and the
//! server that answers the province's pulls, one exchange at a time.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use outpost_sync::{protocol::Limits, Store};

use crate::{
    ca,
    exchange::{
        answer_response, answer_turn, busy, call, system_now, text, Exchanged, Now, EXCHANGE_PATH, PROVINCE,
    },
    net::{self, Peer, Req, Resp},
    token::Token,
};

/// Asks the province at `addr` for this site's bundle with `token`, trusting only the CA the token
/// names.
pub async fn enroll(addr: &str, token: &str) -> anyhow::Result<ca::Bundle> {
    let token = Token::parse(token).context("not an enrolment token (site.secret.fingerprint)")?;
    let tls = net::pinned_client_config(&token.ca_fingerprint);
    // The site's key is made here and never leaves the box: the province signs its public half.
    let key = rcgen::KeyPair::generate().context("cannot make the site's key")?;
    let public_key = key.public_key_raw().to_vec();
    let body = serde_json::to_vec(&serde_json::json!({
        "site": token.site,
        "secret": token.secret,
        "public_key": ca::to_hex(&public_key),
    }))?;
    let (status, answer) =
        net::post(Peer::province(addr), tls, "/sync/v1/enroll", body, 1 << 20, Duration::from_secs(30))
            .await?;
    anyhow::ensure!(status == 200, "the province refused: {}", String::from_utf8_lossy(&answer).trim());
    let mut bundle: ca::Bundle =
        serde_json::from_slice(&answer).context("the province's answer is not a bundle")?;
    anyhow::ensure!(bundle.site_id == token.site, "the bundle is for another site");
    anyhow::ensure!(
        ca::first_der(&bundle.ca_pem).map(|d| ca::fingerprint(&d)).as_deref()
            == Some(token.ca_fingerprint.as_str()),
        "the bundle's CA is not the one the token names"
    );
    let der = ca::first_der(&bundle.cert_pem).context("the province's answer has no certificate")?;
    anyhow::ensure!(
        bundle.key_pem.is_empty() && der.windows(public_key.len()).any(|w| w == public_key.as_slice()),
        "the province's certificate is not for this box's key"
    );
    bundle.key_pem = key.serialize_pem();
    Ok(bundle)
}

/// Where and how a site sends its last-link SMS: the province's number and the site's key (hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmsLink {
    pub number: String,
    pub key: String,
}

/// What the province holds of a site's publicly trusted name.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NameAnswer {
    /// `<site>.<zone>`.
    pub name: String,
    /// The last chain issued for it (PEM, leaf first).
    pub chain_pem: Option<String>,
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
    /// A request waits at the province.
    pub pending: bool,
    pub last_error: Option<String>,
}

/// What a box keeps of its enrolment (`sync/link.json`), and what a USB stick carries to a box
/// without any link: the province's address and the site's bundle.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Enrolment {
    /// `host:port` of the provincial server.
    pub province: String,
    pub bundle: ca::Bundle,
}

/// A site's end of the link: its store, its enrolment, and the turn that keeps its pushes and the
/// province's pulls one at a time.
#[derive(Clone)]
pub struct SiteLink {
    pub store: Store,
    pub bundle: ca::Bundle,
    turn: Arc<tokio::sync::Mutex<()>>,
    now: Now,
}

impl std::fmt::Debug for SiteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteLink").field("site", &self.bundle.site_id).finish_non_exhaustive()
    }
}

/// What the site's pull server reports after each pull: its outcome.
pub type OnPull = Arc<dyn Fn(&anyhow::Result<Exchanged>) + Send + Sync>;

impl SiteLink {
    pub fn new(store: Store, bundle: ca::Bundle) -> SiteLink {
        SiteLink { store, bundle, turn: Arc::default(), now: system_now() }
    }

    /// The site's clock, if not the machine's (the box's injected clock).
    pub fn with_clock(self, now: Now) -> SiteLink {
        SiteLink { now, ..self }
    }

    /// One push to the province at `addr`.
    pub async fn push(&self, addr: &str) -> anyhow::Result<Exchanged> {
        let b = &self.bundle;
        let tls = net::client_config(&b.ca_pem, Some((&b.cert_pem, &b.key_pem)))?;
        let _turn = self.turn.lock().await;
        call(&self.store, (&b.site_id, &self.now), PROVINCE, Peer::province(addr), tls).await
    }

    /// What the province at `addr` holds of this site's publicly trusted name; with `csr` (DER), a
    /// request for it first. `None`: the province gives no names.
    pub async fn name_certificate(
        &self,
        addr: &str,
        csr: Option<Vec<u8>>,
    ) -> anyhow::Result<Option<NameAnswer>> {
        let method = if csr.is_some() { http::Method::POST } else { http::Method::GET };
        self.ask(addr, (method, "/sync/v1/certificate", csr.unwrap_or_default()), 1 << 20).await
    }

    /// The province's number and this site's key for the last link by SMS ([`crate::bysms`]);
    /// `None`: the province takes no SMS.
    pub async fn sms_link(&self, addr: &str) -> anyhow::Result<Option<SmsLink>> {
        self.ask(addr, (http::Method::GET, "/sync/v1/sms", Vec::new()), 1 << 12).await
    }

    /// One request of this site's to the province at `addr`, its JSON answer read (up to `cap`
    /// bytes); `None` when the province does not offer it (404).
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        request: (http::Method, &str, Vec<u8>),
        cap: usize,
    ) -> anyhow::Result<Option<T>> {
        let b = &self.bundle;
        let tls = net::client_config(&b.ca_pem, Some((&b.cert_pem, &b.key_pem)))?;
        let path = request.1.to_owned();
        let (status, answer) =
            net::call(Peer::province(addr), tls, request, cap, Duration::from_secs(30)).await?;
        match status {
            200 => Ok(Some(
                serde_json::from_slice(&answer)
                    .with_context(|| format!("the province's answer to {path}"))?,
            )),
            404 => Ok(None),
            _ => anyhow::bail!("the province refused: {}", String::from_utf8_lossy(&answer).trim()),
        }
    }

    /// Answers one pull: only the province's certificate may, and only with the province's batch.
    pub async fn answer(&self, req: Req) -> (Resp, Option<anyhow::Result<Exchanged>>) {
        if (req.method.as_str(), req.path.as_str()) != ("POST", EXCHANGE_PATH) {
            return ((404, "text/plain", b"not found\n".to_vec()), None);
        }
        match req.peer_cert.as_deref() {
            Some(cert) if net::cert_names(cert, ca::PROVINCE_NAME) => {}
            _ => return (text(403, "only the province may pull this site".into()), None),
        }
        // A push in progress: the province is waiting for it to end, do not wait for the province.
        let Ok(_turn) = self.turn.try_lock() else { return (busy(), None) };
        let (store, me, now) = (self.store.clone(), self.bundle.site_id.clone(), (self.now)());
        let work = tokio::task::spawn_blocking(move || {
            answer_turn(&store, (&me, now), PROVINCE, &req.body, &Limits::default())
        })
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the exchange stopped: {e}")));
        let (resp, outcome) = answer_response(work);
        (resp, Some(outcome))
    }

    /// Serves the province's pulls on `listener` for ever, with this site's certificate; `on_pull`
    /// hears of each one.
    pub async fn serve_pulls(self, listener: tokio::net::TcpListener, on_pull: OnPull) -> anyhow::Result<()> {
        let b = &self.bundle;
        let tls = net::server_config(&b.ca_pem, &b.cert_pem, &b.key_pem)?;
        let handler: net::Handler = Arc::new(move |req| {
            let (link, on_pull) = (self.clone(), on_pull.clone());
            Box::pin(async move {
                let (resp, outcome) = link.answer(req).await;
                if let Some(outcome) = outcome {
                    on_pull(&outcome);
                }
                resp
            })
        });
        let gate = crate::gate::Gate::new("sync", net::LIMITS);
        net::serve(listener, gate, tls, Limits::default().max_wire_bytes, handler).await;
        Ok(())
    }
}
