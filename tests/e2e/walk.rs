//! Every staff page as a nurse's phone shows it (390×844) and as a desk does (1366×900), in headless
//! Chromium reaching the demo box by a name (and every page of the demo province as its officers'
//! phones and desks do): no page scrolls sideways
//! (`document.documentElement.scrollWidth <= innerWidth`), the menu and every button of the page are
//! at least 44 px tall, and on a phone the menu is one button that opens to full-width rows. The
//! screenshots are kept as test artefacts in `target/tmp/walk/`.

use outpost_tests::{staff_pages, BoxProcess, Client};
use serde_json::{json, Value};

use crate::{browser::Driver, PASSWORD};

const NAME: &str = "outpost.khu-a.test";
const SIZES: [(u32, u32, bool); 2] = [(390, 844, true), (1366, 900, false)];

/// The staff pages to walk: every `GET` route for staff that answers a page, with the demo's ids.
fn pages(c: &mut Client) -> Vec<String> {
    let first = |list: Value, key: &str| {
        list.as_array().and_then(|a| a.first()).map(|v| v[key].as_str().unwrap_or("").to_owned())
    };
    let person = first(c.get("/api/v1/people").json(), "id").expect("a person");
    let band = first(c.get("/api/v1/bands").json(), "id").unwrap_or_default();
    staff_pages(c, &person, &band)
}

/// English words that must not show in Vietnamese (the values of statuses, states and purposes).
const ENGLISH: [&str; 14] = [
    "transferred",
    "delivery",
    "quarantined",
    "released",
    "pending",
    "positive",
    "negative",
    "warning",
    "severe",
    "acknowledged",
    "resolved",
    "unseen",
    "ready",
    "visit",
];

/// What the page's text shows that is not Vietnamese: keys not translated (`purpose.test_result`)
/// and English words.
fn words(d: &mut Driver) -> Vec<String> {
    let text = d.script("return document.body.innerText");
    let text = text.as_str().unwrap_or("");
    let prefixes = outpost::base::i18n::key_prefixes();
    let mut out = Vec::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_')) {
        let word = word.trim_matches('.');
        if let Some((prefix, rest)) = word.split_once('.') {
            if prefixes.contains(prefix)
                && !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                out.push(format!("a key: {word}"));
            }
        }
        if ENGLISH.contains(&word.to_lowercase().as_str()) {
            out.push(format!("English: {word}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What the page at the current size is wrong in: sideways scroll, buttons under 44 px.
fn faults(d: &mut Driver) -> Vec<String> {
    let found = d.script(
        r#"
        var out = [];
        var de = document.documentElement;
        if (de.scrollWidth > window.innerWidth) out.push("scrolls sideways: " + de.scrollWidth + " > " + window.innerWidth);
        var targets = document.querySelectorAll("header nav a, header nav button, .menu-button, main button, main .button, main input[type=submit]");
        for (var i = 0; i < targets.length; i++) {
            var r = targets[i].getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            if (r.height < 43.5) out.push("under 44 px (" + Math.round(r.height) + "): " + targets[i].outerHTML.slice(0, 80));
        }
        return out;
        "#,
    );
    found
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Saves the whole page (not only what the window shows) as a PNG.
fn full_page(d: &mut Driver, path: &std::path::Path) {
    let shot = d.cdp("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shot["data"].as_str().unwrap_or(""),
    )
    .unwrap_or_default();
    std::fs::write(path, bytes).expect("screenshot");
}

/// The screenshots' folder (test artefacts).
fn shots() -> std::path::PathBuf {
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("walk");
    std::fs::create_dir_all(&shots).expect("artefacts");
    shots
}

/// Sets the browser's size, opens `path` and waits for its content: the size's width.
fn open_at(d: &mut Driver, (width, height, mobile): (u32, u32, bool), url: &str) -> u32 {
    let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
    d.cdp("Emulation.setDeviceMetricsOverride", metrics);
    d.goto(url);
    d.find("main");
    width
}

#[test]
fn every_staff_page_fits_a_phone_and_a_desk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BoxProcess::start("demo", &dir.path().join("demo"), &[]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "quan.tri", PASSWORD);
    let pages = pages(&mut c);
    assert!(pages.len() >= 20, "{pages:?}");
    let port = b.url.rsplit(':').next().expect("port").to_owned();
    let origin = format!("http://{NAME}:{port}");

    let rules = format!("--host-resolver-rules=MAP {NAME} 127.0.0.1");
    let mut d = Driver::start_with(&dir.path().join("chromium"), None, &[rules]);
    d.goto(&format!("{origin}/login"));
    d.type_into("input[name=username]", "quan.tri");
    d.type_into("input[name=password]", PASSWORD);
    d.click("button[type=submit]");
    d.find("#live");
    let shots = shots();

    let mut wrong = Vec::new();
    for size in SIZES {
        let mobile = size.2;
        for path in &pages {
            let width = open_at(&mut d, size, &format!("{origin}{path}"));
            for fault in faults(&mut d) {
                wrong.push(format!("{path} at {width} px: {fault}"));
            }
            if mobile {
                for word in words(&mut d) {
                    wrong.push(format!("{path}: {word}"));
                }
            }
            let slug = path.trim_matches('/').replace('/', "_");
            full_page(
                &mut d,
                &shots.join(format!("{}-{width}.png", if slug.is_empty() { "dashboard" } else { &slug })),
            );
        }
        if mobile {
            // The menu: one button, opening to rows, the current page marked.
            d.goto(&format!("{origin}/people"));
            let nav = "return document.querySelector('header nav').getBoundingClientRect().height";
            if d.script(nav) != json!(0) {
                wrong.push("on a phone the menu is not closed at first".into());
            }
            d.script("var b = document.querySelector('.menu-button'); if (b) b.click();");
            let shown = d.script(nav);
            if !shown.as_f64().is_some_and(|h| h > 44.0 * 10.0) {
                wrong.push(format!("the open menu is not rows of 44 px: {shown}"));
            }
            let current = "var a = document.querySelector('nav a[aria-current=page]'); return a && a.getAttribute('href')";
            if d.script(current) != json!("/people") {
                wrong.push("the current page is not marked in the menu".into());
            }
            for fault in faults(&mut d) {
                wrong.push(format!("the open menu: {fault}"));
            }
            full_page(&mut d, &shots.join("menu-390.png"));
        }
    }
    assert!(wrong.is_empty(), "{} faults:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn every_province_page_fits_a_phone_and_a_desk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_demo, port, password) = crate::province::province_demo(dir.path(), "tinh.admin");
    let origin = format!("http://tinh.outpost.test:{port}");
    let rules = "--host-resolver-rules=MAP tinh.outpost.test 127.0.0.1".to_owned();
    let mut d = Driver::start_with(&dir.path().join("chromium"), None, &[rules]);
    d.goto(&format!("{origin}/login"));
    d.type_into("input[name=username]", "tinh.admin");
    d.type_into("input[name=password]", &password);
    d.click("button");
    d.find("[data-site]");
    // A site's page, from the overview; a person's record, from a search.
    let site = d.script(
        "var a = document.querySelector('a[href^=\"/site?id=\"]'); return a && a.getAttribute('href')",
    );
    let site = site.as_str().expect("a site's link").to_owned();
    d.goto(&format!("{origin}/people?q=nguyen"));
    let record = d.script("var a = document.querySelector('#people a'); return a && a.getAttribute('href')");
    let record = record.as_str().expect("a person found").to_owned();
    let pages = ["/", "/alerts", "/people?q=nguyen", "/reports", record.as_str(), site.as_str()];
    let shots = shots();
    let mut wrong = Vec::new();
    for size in SIZES {
        for (i, path) in pages.iter().enumerate() {
            let width = open_at(&mut d, size, &format!("{origin}{path}"));
            for fault in faults(&mut d) {
                wrong.push(format!("province {path} at {width} px: {fault}"));
            }
            full_page(&mut d, &shots.join(format!("province-{i}-{width}.png")));
        }
    }
    assert!(wrong.is_empty(), "{} faults:\n{}", wrong.len(), wrong.join("\n"));
}
