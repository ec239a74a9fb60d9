//! A real browser against the web UI: Debian's headless Chromium driven through chromedriver (the W3C
//! WebDriver protocol, spoken here over plain HTTP). A nurse logs in, imports a district list through the
//! upload form, keeps the dashboard open; a quarantined person opens their personal link in another
//! window and declares a fever; the nurse's dashboard shows the new alert without a reload.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use outpost_tests::{district_csv, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

pub(crate) struct Driver {
    child: Child,
    client: Client,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.client_delete();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    pub(crate) fn start(profile: &std::path::Path) -> Driver {
        Driver::start_with(profile, None, &[])
    }

    /// A browser with its profile in `profile`, its home (where Chromium keeps its NSS database of
    /// trusted CAs, `.pki/nssdb`) in `home` if given, and `more` command-line arguments.
    pub(crate) fn start_with(
        profile: &std::path::Path,
        home: Option<&std::path::Path>,
        more: &[String],
    ) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let mut command = Command::new("chromedriver");
        if let Some(home) = home {
            command.env("HOME", home);
        }
        let child = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: scripts/test.sh installs Debian's chromium-driver");
        let mut client = Client::new(&format!("http://127.0.0.1:{port}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(a) = client.try_get("/status") {
                if a.status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=412,915",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(more.iter().cloned());
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": args
        }}}});
        let res = client.post_json("/session", &caps);
        assert_eq!(res.status, 200, "new session: {}", res.body);
        let session = res.json()["value"]["sessionId"].as_str().expect("session id").to_owned();
        Driver { child, client, session }
    }

    fn client_delete(&mut self) -> Option<()> {
        let url = format!("/session/{}", self.session);
        self.client.try_delete(&url).map(|_| ())
    }

    pub(crate) fn cmd(&mut self, path: &str, body: Value) -> Value {
        let res = self.client.post_json(&format!("/session/{}{path}", self.session), &body);
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        res.json()["value"].clone()
    }

    fn get(&mut self, path: &str) -> Value {
        let res = self.client.get(&format!("/session/{}{path}", self.session));
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        res.json()["value"].clone()
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub(crate) fn cdp(&mut self, cmd: &str, params: Value) -> Value {
        self.cmd("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
    }

    /// Runs `js` (a function body) in the page; what it returns.
    pub(crate) fn script(&mut self, js: &str) -> Value {
        self.cmd("/execute/sync", json!({"script": js, "args": []}))
    }

    pub(crate) fn goto(&mut self, url: &str) {
        self.cmd("/url", json!({"url": url}));
    }

    pub(crate) fn find(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let res = self.client.post_json(
                &format!("/session/{}/element", self.session),
                &json!({"using": "css selector", "value": css}),
            );
            if res.status == 200 {
                let v = res.json();
                return v["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("element id in {v}"))
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn type_into(&mut self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd(&format!("/element/{el}/value"), json!({"text": text}));
    }

    pub(crate) fn click(&mut self, css: &str) {
        let el = self.find(css);
        self.cmd(&format!("/element/{el}/click"), json!({}));
    }

    /// The element's text. A live page may replace the element between
    /// finding it and reading it ("stale element reference"): find it again.
    pub(crate) fn text(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let el = self.find(css);
            let res = self.client.get(&format!("/session/{}/element/{el}/text", self.session));
            if res.status == 200 {
                return res.json()["value"].as_str().unwrap_or("").to_owned();
            }
            let stale = res.body.contains("stale element reference");
            assert!(stale && Instant::now() < deadline, "{css} text: {}", res.body);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of `css` once it shows (a hidden element has none), waiting up to 10 s for it.
    pub(crate) fn shown_text(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css);
            if !text.is_empty() || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn source(&mut self) -> String {
        self.get("/source").as_str().unwrap_or("").to_owned()
    }

    pub(crate) fn url(&mut self) -> String {
        self.get("/url").as_str().unwrap_or("").to_owned()
    }

    pub(crate) fn screenshot(&mut self, path: &std::path::Path) {
        use std::io::Write;
        let b64 = self.get("/screenshot");
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.as_str().unwrap_or(""))
                .unwrap_or_default();
        if let Ok(mut f) = std::fs::File::create(path) {
            let _ = f.write_all(&bytes);
        }
    }
}

#[test]
fn nurse_imports_a_list_and_sees_a_declaration_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = BoxProcess::start("run", &dir.path().join("data"), &[]);
    // The first administrator, then a nurse account for the browser.
    let mut admin = Client::new(&b.url);
    admin.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.browser", PASSWORD);
    let res = admin.post_form(
        "/users",
        &[
            ("display_name", "Y tá Mai"),
            ("username", "yta.mai"),
            ("role", "medical"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let today = chrono::Utc::now().date_naive();
    let csv_path = dir.path().join("danh-sach-quan.csv");
    std::fs::write(
        &csv_path,
        district_csv(
            20,
            &today.format("%d/%m/%Y").to_string(),
            &(today + chrono::Duration::days(14)).format("%d/%m/%Y").to_string(),
        ),
    )
    .expect("csv");

    let mut d = Driver::start(&dir.path().join("chromium"));
    d.goto(&format!("{}/", b.url));
    assert!(d.url().contains("/login"), "an anonymous visit goes to the login page");
    assert!(d.source().contains("Đăng nhập"), "Vietnamese first");
    d.type_into("input[name=username]", "yta.mai");
    d.type_into("input[name=password]", PASSWORD);
    d.click("button[type=submit]");
    d.find("#live");

    d.goto(&format!("{}/people/import", b.url));
    d.type_into("input[type=file]", &csv_path.display().to_string());
    d.click("form.stack button[type=submit]");
    let notice = d.text("p.notice");
    assert!(notice.contains("20"), "import notice: {notice}");
    assert!(d.source().contains("Nguyễn Văn An"), "the imported names are listed intact");

    // The person's own link, as the QR code would open it.
    d.click("table tbody tr td a");
    let link = d.text("#personal-link");
    assert!(link.contains("/d/"), "{link}");

    d.goto(&format!("{}/", b.url));
    let before: u64 = d.text("[data-count=open_alerts]").parse().expect("count");
    let dashboard = d.get("/window").as_str().expect("handle").to_owned();
    // Give the page a moment to open its event stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.source().contains("class=\"live\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let new = d.cmd("/window/new", json!({"type": "window"}));
    let person_window = new["handle"].as_str().expect("handle").to_owned();
    d.cmd("/window", json!({"handle": person_window}));
    d.goto(&link);
    d.find("input[name=temperature]");
    let form = d.source();
    assert!(form.contains("Khai báo y tế"), "{form}");
    d.type_into("input[name=temperature]", "38,7");
    d.click("input[value=cough]");
    d.click("button[type=submit]");
    let thanks = d.text("p.notice");
    assert!(thanks.contains("Đã nhận khai báo"), "{thanks}");

    d.cmd("/window", json!({"handle": dashboard}));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: u64 = d.text("[data-count=open_alerts]").parse().unwrap_or(0);
        if now == before + 1 && d.source().contains("38.7 °C") {
            break;
        }
        assert!(Instant::now() < deadline, "the dashboard did not update live: {}", d.source());
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Ok(shot) = std::env::var("OUTPOST_SCREENSHOT") {
        d.screenshot(std::path::Path::new(&shot));
    }

    // The sampling desk: an ID number typed in; then the day's report with its chart.
    d.goto(&format!("{}/testing", b.url));
    d.type_into("#code", "079000000000");
    d.click("#sample-desk button[type=submit]");
    let notice = d.text("p.notice");
    assert!(notice.contains("Đã ghi nhận lấy mẫu") && notice.contains("Lần lấy mẫu 1"), "{notice}");
    d.goto(&format!("{}/reports", b.url));
    d.find("#report-chart svg polyline");
    let report = d.source();
    assert!(report.contains("<th>Số người lấy mẫu lần 1</th><td>1</td>"), "{report}");
    if let Ok(shot) = std::env::var("OUTPOST_REPORT_SCREENSHOT") {
        d.screenshot(std::path::Path::new(&shot));
    }

    // The gate: the poster's link opens the check-in form, which a visitor fills in.
    d.goto(&format!("{}/checkin/poster", b.url));
    let gate = d.text("#checkin-link");
    d.goto(&gate);
    d.type_into("#checkin-form input[name=name]", "Lê Thị Khách");
    d.type_into("#checkin-form input[name=phone]", "0912345678");
    d.cmd(
        "/execute/sync",
        json!({"script": "document.querySelector('select[name=purpose]').value = 'visit'", "args": []}),
    );
    d.click("#checkin-form button[type=submit]");
    let recorded = d.text("p.notice");
    assert!(recorded.contains("Đã ghi nhận: Vào"), "{recorded}");
    d.goto(&format!("{}/checkin", b.url));
    assert!(d.source().contains("Lê Thị Khách"), "the log lists the visitor");

    // A spot check asked for from a person's page, answered in the browser with a test image as the
    // camera's photo and a fixed position (the browser's geolocation override), then reviewed.
    d.goto(&format!("{}/people", b.url));
    d.click("table tbody tr td a");
    d.click("form[action$='/spotcheck'] button");
    // The request queues the SMS with the link (read here from the outbox, as the modem would send it).
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let outbox = admin.get("/api/v1/outbox").json();
        let found =
            outbox.as_array().expect("outbox").iter().rev().find(|m| m["purpose"] == "spot_check").cloned();
        if let Some(m) = found {
            break m["text"].as_str().expect("text").to_owned();
        }
        assert!(Instant::now() < deadline, "no spot-check SMS: {outbox}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let link = text[text.find("http").expect("link")..].split_whitespace().next().expect("link").to_owned();
    d.cmd("/goog/cdp/execute", json!({"cmd": "Browser.grantPermissions", "params": {"origin": b.url, "permissions": ["geolocation"]}}));
    d.cmd("/goog/cdp/execute", json!({"cmd": "Emulation.setGeolocationOverride", "params": {"latitude": 16.0749, "longitude": 108.1497, "accuracy": 12}}));
    d.goto(&link);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.text("#spot-position").starts_with('✓') {
        assert!(Instant::now() < deadline, "no position: {}", d.source());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The camera's picture: a 640×480 image drawn by the page's own canvas, put in the file input.
    let script = "const c = document.createElement('canvas'); c.width = 640; c.height = 480; \
        const g = c.getContext('2d'); g.fillStyle = '#c8926a'; g.fillRect(0, 0, 640, 480); \
        g.fillStyle = '#333'; g.beginPath(); g.arc(320, 200, 120, 0, 7); g.fill(); \
        const d = atob(c.toDataURL('image/jpeg').split(',')[1]); const a = new Uint8Array(d.length); \
        for (let i = 0; i < d.length; i++) a[i] = d.charCodeAt(i); \
        const t = new DataTransfer(); t.items.add(new File([a], 'camera.jpg', {type: 'image/jpeg'})); \
        document.getElementById('spot-photo').files = t.files;";
    d.cmd("/execute/sync", json!({"script": script, "args": []}));
    d.click("#spot-form button[type=submit]");
    let thanks = d.text("p.notice");
    assert!(thanks.contains("Đã nhận ảnh và vị trí"), "{thanks}");
    d.goto(&format!("{}/spotchecks", b.url));
    d.find("img.spot-photo");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let width = d.cmd(
            "/execute/sync",
            json!({"script": "return document.querySelector('img.spot-photo').naturalWidth", "args": []}),
        );
        if width.as_u64() == Some(640) {
            break;
        }
        assert!(Instant::now() < deadline, "the photo does not show (width {width})");
        std::thread::sleep(Duration::from_millis(100));
    }
    d.click("form[action$='/review'] button");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.source().contains("Đã chấp nhận") {
        assert!(Instant::now() < deadline, "the review is not shown: {}", d.source());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The dashboard's event stream is still open: the box stops cleanly all the same.
    assert!(b.stop().success());
}
