//! Harness for the end-to-end tests: start the real `outpost` binary on a free port with its own data
//! folder, read what it prints, drive its manual clock, kill it, and talk to it over HTTP as a browser or
//! an API client would (cookies, CSRF tokens, bearer tokens). No mocks: everything goes through the
//! process boundary and the loopback network.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{self, Receiver},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod pg;

/// The `outpost` binary built by `cargo build` (or named by `OUTPOST_BIN`).
pub fn outpost_bin() -> PathBuf {
    built_bin("outpost", "OUTPOST_BIN")
}

/// The `outpost-province` binary built by `cargo build` (or named by `OUTPOST_PROVINCE_BIN`).
pub fn province_bin() -> PathBuf {
    built_bin("outpost-province", "OUTPOST_PROVINCE_BIN")
}

fn built_bin(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A running box.
pub struct BoxProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub url: String,
    pub setup_link: Option<String>,
    /// Everything it printed on standard output so far.
    pub printed: Vec<String>,
}

impl BoxProcess {
    /// Starts `outpost <subcommand> --data DATA --listen 127.0.0.1:0 <extra…>` and waits until it listens.
    pub fn start(subcommand: &str, data: &Path, extra: &[&str]) -> BoxProcess {
        BoxProcess::start_wrapped(&[], subcommand, data, extra)
    }

    /// [`BoxProcess::start`] through a wrapper command, which gets the box's command line as its
    /// last arguments (`unshare … sh -c '…; exec "$@"' …`, say).
    pub fn start_wrapped(wrapper: &[&str], subcommand: &str, data: &Path, extra: &[&str]) -> BoxProcess {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(outpost_bin());
                c
            }
            None => Command::new(outpost_bin()),
        };
        cmd.arg(subcommand)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--log", "warn,rumqttd=off"])
            .args(if extra.contains(&"--mqtt") { &[][..] } else { &["--mqtt", "off"][..] })
            .args(if extra.contains(&"--mqtt-tls") { &[][..] } else { &["--mqtt-tls", "off"][..] })
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn outpost");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut b =
            BoxProcess { child, stdin, lines: rx, url: String::new(), setup_link: None, printed: Vec::new() };
        let line = b.wait_for(|l| l.contains(" listening on "), Duration::from_secs(30));
        b.url = line.rsplit(' ').next().expect("url").to_owned();
        // A setup link, when the box has no account yet, is printed just before.
        b.setup_link = b
            .printed
            .iter()
            .find(|l| l.contains("/setup/"))
            .and_then(|l| l.find("http://").map(|i| l[i..].trim().to_owned()));
        b
    }

    /// The port of its HTTPS listener, as it printed it (`web.tls_listen` on port 0 lets the box
    /// pick a free one: no other test can take it in between).
    pub fn https_port(&self) -> u16 {
        self.printed
            .iter()
            .find_map(|l| l.strip_prefix("HTTPS on "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no HTTPS listener printed: {:?}", self.printed))
    }

    /// Waits for a printed line matching `pred`.
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.printed.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "outpost did not print the expected line (exit: {status:?}); it printed: {:#?}",
                        self.printed
                    )
                }
            }
        }
    }

    /// Sends a clock command (`set TIME`, `advance 30m`, `tick`) and returns the box's `clock …` reply.
    pub fn clock(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write clock command");
        stdin.flush().expect("flush");
        let line = self.wait_for(|l| l.starts_with("clock"), Duration::from_secs(30));
        assert!(line.starts_with("clock "), "{line}");
        line
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!("outpost did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A provincial server process, killed when dropped (a failing test leaves none behind).
pub struct ProvinceProcess(pub Child);

impl ProvinceProcess {
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()
    }

    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for ProvinceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for BoxProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A client with a cookie jar, like one browser.
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    cookies: HashMap<String, String>,
    pub bearer: Option<String>,
    /// The session's CSRF token, once logged in.
    pub csrf: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client::with_agent(base, None)
    }

    /// A client over HTTPS at `base` that trusts only the certificate in `root` (PEM file): the
    /// box's own (valid for 127.0.0.1), or a CA's.
    pub fn tls(base: &str, root: &Path) -> Client {
        let pem = std::fs::read(root).expect("the root certificate");
        let cert = ureq::tls::Certificate::from_pem(&pem).expect("a PEM certificate").to_owned();
        let tls =
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build();
        Client::with_agent(base, Some(tls))
    }

    /// A client at `base` that follows no redirect, reads every status, waits at most 30 s, and
    /// speaks TLS with `tls` if given.
    fn with_agent(base: &str, tls: Option<ureq::tls::TlsConfig>) -> Client {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)));
        let agent: ureq::Agent = match tls {
            Some(tls) => config.tls_config(tls).build().into(),
            None => config.build().into(),
        };
        Client {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            cookies: HashMap::new(),
            bearer: None,
            csrf: None,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn finish(&mut self, res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        self.try_finish(res).expect("HTTP request")
    }

    fn try_finish(
        &mut self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ureq::Error> {
        let mut res = res?;
        for v in res.headers().get_all("set-cookie") {
            if let Some((kv, _)) =
                v.to_str().unwrap_or("").split_once(';').or(Some((v.to_str().unwrap_or(""), "")))
            {
                if let Some((k, v)) = kv.split_once('=') {
                    if v.is_empty() {
                        self.cookies.remove(k);
                    } else {
                        self.cookies.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
        }
        let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = res.status().as_u16();
        // Lossy: a download (an .xlsx) is not text, and a test of its status should not fail on it.
        let body = String::from_utf8_lossy(&res.body_mut().read_to_vec()?).into_owned();
        Ok(Answer { status, location, body })
    }

    fn with_auth<B>(&self, mut req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", &format!("Bearer {b}"));
        }
        if let Some(c) = &self.csrf {
            req = req.header("X-CSRF-Token", c);
        }
        req
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let req = self.with_auth(self.agent.get(&self.url(path)));
        let res = req.call();
        self.finish(res)
    }

    /// The ids of the people the box lists.
    /// Admits one person today, for 14 days, through the API: their id and declaration token.
    pub fn admit(&mut self, full_name: &str, phone: &str, id_number: &str) -> (String, String) {
        let today = chrono::Utc::now().date_naive();
        let res = self.post_json(
            "/api/v1/people",
            &serde_json::json!({
                "full_name": full_name, "phone": phone, "id_number": id_number,
                "quarantine_start": today.to_string(),
                "quarantine_end": (today + chrono::Duration::days(14)).to_string(),
            }),
        );
        assert_eq!(res.status, 201, "{}", res.body);
        let p = res.json();
        (p["id"].as_str().expect("id").to_owned(), p["declare_token"].as_str().expect("token").to_owned())
    }

    /// The open alerts of `kind` (`/api/v1/alerts`).
    pub fn alerts_of(&mut self, kind: &str) -> Vec<Value> {
        let alerts = self.get("/api/v1/alerts").json();
        alerts.as_array().expect("alerts").iter().filter(|a| a["kind"] == kind).cloned().collect()
    }

    pub fn people_ids(&mut self) -> Vec<String> {
        self.get("/api/v1/people")
            .json()
            .as_array()
            .expect("people")
            .iter()
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// A cookie the box set, if it did.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The body of a successful GET as bytes (a download).
    pub fn get_bytes(&mut self, path: &str) -> Vec<u8> {
        let req = self.with_auth(self.agent.get(&self.url(path)));
        let mut res = req.call().expect("HTTP request");
        assert_eq!(res.status().as_u16(), 200, "GET {path}");
        res.body_mut().read_to_vec().expect("body")
    }

    /// Like [`Client::get`], but a connection failure is `None`.
    pub fn try_get(&mut self, path: &str) -> Option<Answer> {
        let req = self.with_auth(self.agent.get(&self.url(path)));
        let res = req.call();
        self.try_finish(res).ok()
    }

    pub fn try_delete(&mut self, path: &str) -> Option<Answer> {
        let req = self.with_auth(self.agent.delete(&self.url(path)));
        let res = req.call();
        self.try_finish(res).ok()
    }

    /// A form post; the form's `csrf` field is added from the session or the anonymous CSRF cookie.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf =
            self.csrf.clone().or_else(|| self.cookies.get("outpost_csrf").cloned()).unwrap_or_default();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &csrf));
        let req = self.with_auth(self.agent.post(&self.url(path)));
        let res = req.send_form(all);
        self.finish(res)
    }

    /// A form post exactly as given (no CSRF field added).
    pub fn post_form_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let req = self.with_auth(self.agent.post(&self.url(path)));
        let res = req.send_form(fields.to_vec());
        self.finish(res)
    }

    pub fn post_json(&mut self, path: &str, body: &Value) -> Answer {
        let req = self.with_auth(self.agent.post(&self.url(path)));
        let res = req.send_json(body);
        self.finish(res)
    }

    /// Like [`Client::post_json`], but a connection failure (a box that was just killed) is `None`.
    pub fn try_post_json(&mut self, path: &str, body: &Value) -> Option<Answer> {
        let req = self.with_auth(self.agent.post(&self.url(path)));
        let res = req.send_json(body);
        self.try_finish(res).ok()
    }

    pub fn put_json(&mut self, path: &str, body: &Value) -> Answer {
        let req = self.with_auth(self.agent.put(&self.url(path)));
        let res = req.send_json(body);
        self.finish(res)
    }

    pub fn post_bytes(&mut self, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let req = self.with_auth(self.agent.post(&self.url(path))).header("Content-Type", content_type);
        let res = req.send(body);
        self.finish(res)
    }

    /// Creates the first administrator through the one-time setup link and keeps the session.
    pub fn setup_admin(&mut self, setup_link: &str, username: &str, password: &str) {
        let page = self.get(setup_link);
        assert_eq!(page.status, 200, "{}", page.body);
        let path = setup_link.find("/setup/").map(|i| &setup_link[i..]).expect("setup path");
        let res = self.post_form(
            path,
            &[
                ("display_name", "Quản trị viên"),
                ("username", username),
                ("password", password),
                ("password2", password),
            ],
        );
        assert_eq!(res.status, 303, "setup failed: {}", res.body);
        self.load_csrf();
    }

    /// Logs in with a password and keeps the session (a session that ended, with the manual clock
    /// moved past it, leaves its CSRF token behind: the login form must not repeat it).
    pub fn login(&mut self, username: &str, password: &str) -> Answer {
        self.csrf = None;
        self.get("/login");
        let res = self.post_form("/login", &[("username", username), ("password", password), ("next", "/")]);
        if res.status == 303 {
            self.load_csrf();
        }
        res
    }

    /// Reads the session's CSRF token from the API.
    pub fn load_csrf(&mut self) {
        let s = self.get("/api/v1/session");
        assert_eq!(s.status, 200, "{}", s.body);
        self.csrf = s.json()["csrf"].as_str().map(str::to_owned);
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
        self.csrf = None;
    }
}

/// Writes a site configuration file into `dir` and returns its path, for `--config`.
pub fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("site.toml");
    std::fs::write(&path, toml).expect("write the configuration");
    path.display().to_string()
}

/// The CPU time (user + system) process `pid` has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let (ticks, _) = cpu_ticks(&format!("/proc/{pid}/stat"), false).expect("stat");
    Duration::from_millis(ticks * 10) // USER_HZ: CLOCK_TICKS a second
}

/// Linux counts CPU time in `/proc` in ticks of 1/100 s (`USER_HZ`, the same on every architecture).
pub const CLOCK_TICKS: f64 = 100.0;

/// A process's or thread's CPU ticks from its `stat` file (user and system; with its waited-for
/// children's too if `children`) and its parent's pid. `None` if it is gone.
pub fn cpu_ticks(stat: &str, children: bool) -> Option<(u64, u32)> {
    let text = std::fs::read_to_string(stat).ok()?;
    // Fields after the name (which may hold spaces): state, ppid, …, utime, stime, cutime, cstime.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let own = number(11) + number(12);
    Some((if children { own + number(13) + number(14) } else { own }, number(1) as u32))
}

/// Waits (up to 30 s) until `f` holds; fails the test naming `what` otherwise.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A CSV list of `n` people in the districts' format (semicolon, BOM, Vietnamese headers).
pub fn district_csv(n: usize, start: &str, end: &str) -> Vec<u8> {
    let mut s = String::from("\u{feff}STT;Họ và tên;Năm sinh;Số điện thoại;Giới tính;Số CMND/CCCD;Địa chỉ cách ly;Phòng;Ngày bắt đầu cách ly;Ngày kết thúc cách ly;Số Quyết định;Công nhân\r\n");
    let family = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"];
    let given = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hương", "Lan", "Long"];
    for i in 0..n {
        s.push_str(&format!(
            "{};{} Văn {};{};09{:08};{};0{:011};Khu cách ly tập trung;{}{:02};{start};{end};{}/QĐ-UBND;{}\r\n",
            i + 1,
            family[i % family.len()],
            given[(i / family.len()) % given.len()],
            1960 + i % 50,
            30_000_000 + i,
            if i % 2 == 0 { "Nam" } else { "Nữ" },
            79_000_000_000u64 + i as u64,
            ["A", "B"][i % 2],
            i / 2 + 1,
            100 + i / 10,
            if i % 3 == 0 { "x" } else { "" },
        ));
    }
    s.into_bytes()
}

/// A box on the manual clock at `clock`, with the modem simulator `modem` and configuration `extra`
/// (TOML) and `more` arguments, its first administrator `lan.nguyen` signed in with `password`, and
/// `people` imported from a district list admitted on 21/11/2026: the box, the signed-in client and
/// the people's ids.
pub fn site_with_people(
    dir: &Path,
    modem: &Path,
    extra: &str,
    clock: &str,
    people: usize,
    (password, more): (&str, &[&str]),
) -> (BoxProcess, Client, Vec<String>) {
    site_with_people_wrapped(&[], dir, modem, extra, clock, people, (password, more))
}

/// [`site_with_people`] with the box started through `wrapper` (see [`BoxProcess::start_wrapped`]).
pub fn site_with_people_wrapped(
    wrapper: &[&str],
    dir: &Path,
    modem: &Path,
    extra: &str,
    clock: &str,
    people: usize,
    (password, more): (&str, &[&str]),
) -> (BoxProcess, Client, Vec<String>) {
    let config = write_config(
        dir,
        &format!("[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 1\n{extra}", modem.display()),
    );
    let args: Vec<&str> =
        ["--config", config.as_str(), "--clock", clock].into_iter().chain(more.iter().copied()).collect();
    let b = BoxProcess::start_wrapped(wrapper, "run", &dir.join("data"), &args);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", password);
    let res =
        c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(people, "21/11/2026", "05/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let ids = c.people_ids();
    (b, c, ids)
}

/// Publishes one QoS 1 message with Debian's `mosquitto_pub` (a real MQTT client) to the plain port;
/// whether the broker accepted it.
pub fn mqtt_publish(port: u16, user: &str, pass: &str, topic: &str, payload: &str) -> bool {
    mosquitto_pub(&["-h", "127.0.0.1", "-p", &port.to_string()], user, pass, topic, payload)
}

/// `mosquitto_pub` with `connect` (host, port, protocol version, TLS options) publishing one QoS 1
/// message; whether the broker accepted it.
pub fn mosquitto_pub(connect: &[&str], user: &str, pass: &str, topic: &str, payload: &str) -> bool {
    Command::new("mosquitto_pub")
        .args(connect)
        .args(["-u", user, "-P", pass, "-q", "1", "-t", topic, "-m", payload])
        .output()
        .expect("mosquitto_pub is missing: scripts/test.sh installs Debian's mosquitto-clients")
        .status
        .success()
}

/// Another box's certificate, made in `dir`: what a device or a phone that trusts the wrong box has.
pub fn another_box_certificate(dir: &Path) -> PathBuf {
    use outpost::platform::tls;
    let (cert, key) = tls::default_paths(dir);
    tls::load_or_create(&cert, &key, true, "Outpost other", &tls::names(&[])).expect("another certificate");
    cert
}

std::thread_local! {
    /// The database the province's processes started by this test thread keep the sites in
    /// ([`use_database`]); none: a store per site under the data folder.
    static DATABASE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// From now on, the province's processes this test starts keep the sites in `url` (PostgreSQL).
pub fn use_database(url: String) {
    DATABASE.with(|d| *d.borrow_mut() = Some(url));
}

/// `outpost-province --data <data>`, on this test's database if it chose one.
fn province_command(data: &Path) -> Command {
    let mut c = Command::new(province_bin());
    c.arg("--data").arg(data);
    if let Some(url) = DATABASE.with(|d| d.borrow().clone()) {
        c.env("OUTPOST_PROVINCE_DATABASE", url);
    }
    c
}

/// A box run on `data` with `config`, its administrator `lan.nguyen` set up with `password` and
/// `people` imported from a district list: the box, the signed-in client and each person's
/// declaration token.
pub fn box_with_list(
    data: &Path,
    config: &str,
    password: &str,
    people: usize,
) -> (BoxProcess, Client, Vec<String>) {
    let b = BoxProcess::start("run", data, &["--config", config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", password);
    let res =
        c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(people, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let tokens = c
        .people_ids()
        .iter()
        .map(|id| {
            c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned()
        })
        .collect();
    (b, c, tokens)
}

/// Round `round` of declarations at the box at `url`: a third of `tokens` declare (each must be
/// acknowledged); how many did.
pub fn declare_round(url: &str, tokens: &[String], round: usize) -> usize {
    let mut person = Client::new(url);
    let mut acknowledged = 0;
    for token in tokens.iter().skip(round % 3).step_by(3) {
        let res = person.post_json(
            &format!("/api/v1/declare/{token}"),
            &serde_json::json!({"temperature": "36.7", "spo2": "97", "symptoms": []}),
        );
        assert_eq!(res.status, 201, "{}", res.body);
        acknowledged += 1;
    }
    acknowledged
}

/// `outpost-province --data <data> <args>`, which must succeed: what it printed.
pub fn province_cmd(data: &Path, args: &[&str]) -> String {
    let out = province_command(data).args(args).output().expect("outpost-province");
    assert!(out.status.success(), "outpost-province {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts `outpost-province serve --listen <listen> <more>`: the process and the sync address.
pub fn serve_province<S: AsRef<std::ffi::OsStr>>(
    data: &Path,
    listen: &str,
    more: &[S],
) -> (ProvinceProcess, String) {
    serve_province_logging(data, listen, more, Stdio::inherit())
}

/// [`serve_province`] with its log (standard error) going to `log`.
pub fn serve_province_logging<S: AsRef<std::ffi::OsStr>>(
    data: &Path,
    listen: &str,
    more: &[S],
    log: Stdio,
) -> (ProvinceProcess, String) {
    let mut server = province_command(data)
        .args(["serve", "--listen", listen])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("serve");
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("listening line");
    let addr = line.trim().rsplit("https://").next().expect("address").to_owned();
    // What it prints later still has somewhere to go.
    std::thread::spawn(move || out.lines().for_each(drop));
    (ProvinceProcess(server), addr)
}

/// `outpost-province serve`'s arguments for the relay for `*.<zone>` on loopback: phones on port
/// `reach`, boxes' tunnels on `tunnels`, then `more`.
pub fn relay_args(zone: &str, (reach, tunnels): (u16, u16), more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--zone".to_owned(),
        zone.to_owned(),
        "--reach".to_owned(),
        format!("127.0.0.1:{reach}"),
        "--tunnels".to_owned(),
        format!("127.0.0.1:{tunnels}"),
    ];
    args.extend(more.iter().map(|a| (*a).to_owned()));
    args
}

/// `outpost enroll` for the box with `config` and `data`, through the province at `addr`.
pub fn enroll_box(config: &str, data: &Path, addr: &str, token: &str) -> std::process::Output {
    Command::new(outpost_bin())
        .args(["enroll", "--config", config, "--data"])
        .arg(data)
        .args(["--province", addr, "--token", token])
        .output()
        .expect("outpost enroll")
}

/// `GET path` over TLS to 127.0.0.1:`port` as `name` (its server name and `Host`), trusting only
/// `cafile`, as a phone would: the whole answer, or why there was none (Python's `ssl`, a client of
/// its own).
pub fn https_get_as(port: u16, cafile: &Path, name: &str, path: &str) -> Result<String, String> {
    let script = r#"
import socket, ssl, sys
port, cafile, name, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=name) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
sys.stdout.write(data.decode(errors="replace"))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), &cafile.display().to_string(), name, path])
        .output()
        .expect("python3");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// What a [`FlakyProxy`] does to new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Passes bytes both ways.
    Pass,
    /// Passes, then cuts the connection after a random number of bytes from the client (up to 4 KiB).
    Cut,
    /// Accepts and closes at once: the peer looks down.
    Block,
}

/// A TCP proxy on loopback for link-failure tests: every new connection is treated by the mode set
/// at the time (see [`ProxyMode`]). Runs until the test process ends.
pub struct FlakyProxy {
    pub addr: String,
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    /// Connections cut mid-stream so far.
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FlakyProxy {
    pub fn start(target: String) -> FlakyProxy {
        use std::{io::Read, io::Write, net::TcpStream, sync::atomic::Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
        let addr = listener.local_addr().expect("addr").to_string();
        let mode = std::sync::Arc::new(std::sync::Mutex::new(ProxyMode::Pass));
        let cuts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (m, c) = (mode.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let now = *m.lock().expect("mode");
                if now == ProxyMode::Block {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                // Within the first 4 KiB: in the TLS handshake or in the request's batch.
                let limit =
                    if now == ProxyMode::Cut { u64::from(rand::random::<u16>() % 4096) } else { u64::MAX };
                let (mut c_in, mut s_out) =
                    (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                let (mut s_in, mut c_out) = (server, client);
                let cuts = c.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut passed = 0u64;
                    loop {
                        let n = match c_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let take = (limit - passed).min(n as u64) as usize;
                        if s_out.write_all(&buf[..take]).is_err() {
                            break;
                        }
                        passed += take as u64;
                        if passed >= limit {
                            cuts.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    let _ = c_in.shutdown(std::net::Shutdown::Both);
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        FlakyProxy { addr, mode, cuts }
    }

    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().expect("mode") = mode;
    }
}

/// A Knot DNS server on loopback, authoritative for one zone whose every name resolves to
/// 127.0.0.1, taking RFC 2136 updates signed with its TSIG key. Stopped when dropped.
pub struct Knot {
    child: Child,
    /// `127.0.0.1:port`, TCP and UDP.
    pub addr: String,
    /// The TSIG key as `hmac-sha256:name:base64`, in a file.
    pub key_file: PathBuf,
}

impl Knot {
    pub fn start(dir: &Path, zone: &str) -> Knot {
        std::fs::create_dir_all(dir.join("db")).expect("knot's folder");
        let secret: [u8; 32] = rand::random();
        let secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret);
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\ndatabase:\n    storage: \"{d}/db\"\n\
             key:\n  - id: province-key\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             acl:\n  - id: update\n    key: province-key\n    action: update\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    file: \"%s.zone\"\n\
             zone:\n  - domain: {zone}\n    acl: update\n"
        );
        std::fs::write(dir.join("knot.conf"), conf).expect("knot.conf");
        let records = format!(
            "$ORIGIN {zone}.\n$TTL 60\n@ SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n* A 127.0.0.1\n"
        );
        std::fs::write(dir.join(format!("{zone}.zone")), records).expect("the zone file");
        let key_file = dir.join("tsig.key");
        std::fs::write(&key_file, format!("hmac-sha256:province-key:{secret}\n")).expect("the key file");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("knotd (Debian's knot package; scripts/test.sh installs it)");
        let addr = format!("127.0.0.1:{port}");
        wait_until("knotd to listen", || std::net::TcpStream::connect(&addr).is_ok());
        Knot { child, addr, key_file }
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pebble, Let's Encrypt's ACME test CA, on loopback: checking DNS-01 challenges against `dns`,
/// certificates valid 90 days. Stopped when dropped.
pub struct Pebble {
    child: Child,
    /// The ACME directory URL.
    pub directory: String,
    /// The CA certificate of Pebble's own HTTPS (PEM file), for the ACME client.
    pub https_ca: PathBuf,
    management: u16,
}

impl Pebble {
    pub fn start(dir: &Path, dns: &str) -> Pebble {
        std::fs::create_dir_all(dir).expect("pebble's folder");
        let ca = outpost_link::ca::Ca::load_or_create(&dir.join("https-ca"), true)
            .expect("a CA for pebble's HTTPS");
        let issued = ca
            .issue(&["localhost".to_owned()], &[rcgen::ExtendedKeyUsagePurpose::ServerAuth])
            .expect("pebble's HTTPS certificate");
        std::fs::write(dir.join("cert.pem"), &issued.cert_pem).expect("cert");
        std::fs::write(dir.join("key.pem"), &issued.key_pem).expect("key");
        let https_ca = dir.join("https-ca.pem");
        std::fs::write(&https_ca, &ca.cert_pem).expect("ca");
        let (port, management) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": 90 * 86_400,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).expect("pebble.json");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", dns])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble (Debian's pebble package; scripts/test.sh installs it)");
        wait_until("pebble to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Pebble { child, directory: format!("https://localhost:{port}/dir"), https_ca, management }
    }

    /// The root that Pebble's issued certificates chain to (PEM), as a phone would trust a public CA.
    pub fn issuing_root(&self) -> String {
        let script = "import ssl,sys,urllib.request; ctx=ssl.create_default_context(cafile=sys.argv[2]); \
                      sys.stdout.write(urllib.request.urlopen(f'https://localhost:{sys.argv[1]}/roots/0', context=ctx).read().decode())";
        let out = Command::new("python3")
            .args(["-c", script, &self.management.to_string(), &self.https_ca.display().to_string()])
            .output()
            .expect("python3");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every staff page of the box: each `GET` route for staff that answers a whole page (not the API,
/// exports, streams or images), with `person`'s and `band`'s ids where the path takes one.
pub fn staff_pages(c: &mut Client, person: &str, band: &str) -> Vec<String> {
    use outpost::web::{routes, Access};
    let mut out = Vec::new();
    for r in routes() {
        let path = r.path;
        let skip = r.method != axum::http::Method::GET
            || matches!(r.access, Access::Public)
            || path.starts_with("/api/")
            || ["/events", "/dashboard/live", "/logout"].contains(&path)
            || [".csv", ".xlsx", ".svg", ".crt", "/photo"].iter().any(|s| path.ends_with(s));
        if skip {
            continue;
        }
        let path = if path.starts_with("/bands/") {
            path.replace("{id}", band)
        } else {
            path.replace("{id}", person)
        };
        if path.contains('{') {
            continue;
        }
        let answer = c.get(&path);
        if answer.status == 200 && answer.body.starts_with("<!DOCTYPE html>") {
            out.push(path);
        }
    }
    out
}
