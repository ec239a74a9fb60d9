//! What the box writes to its SD card (docs/ble.md, "The SD card"): `cargo build --release --bins &&
//! cargo bench -p outpost-tests --bench writes` (as root: the card is a file system of its own).
//!
//! The real box (`outpost run`, release) keeps its data on an ext4 file system of its own (an image
//! on a loop device, mounted `noatime` as Raspberry Pi OS mounts its root, in a private mount
//! namespace), so that the loop device's count of sectors written (`/sys/block/loopN/stat`) is
//! everything the card would see of the box: its data, ext4's journal and metadata. The process's
//! own count (`/proc/<pid>/io` `write_bytes`) is printed beside it: on kernels whose ext4 caches
//! files in large folios (6.16 and later; this machine runs 6.18) it charges a whole folio (up to
//! 2 MB) each time a small write dirties a clean one, so it overstates small synced writes by up
//! to hundreds of times (docs/ble.md shows the measurement).
//!
//! `WRITES_PEOPLE` (2,000) people, each wearing a band, and two site gateways logged in to its
//! broker (rumqttc, QoS 0, Theengs payloads). For one hour of the box's manual clock, every
//! `WRITES_STEP_SECONDS` (10) both gateways report every band (one near, one far) and the clock moves
//! on; `WRITES_HOUR_DECLARATIONS` (250) declarations arrive through the API over the hour. Bytes written over the hour, times 24:
//! the card's day. Goal ≤ 1 GB a day.
//!
//! Then, the bands quiet, `WRITES_DECLARATIONS` (250) declarations one after another, each
//! acknowledged (201) before the next: the bytes written per acknowledged declaration. Goal ≤ 4 KB.
//!
//! The hour runs faster than real time (a step as soon as the box has taken the last). What is
//! written on a timer of real time (the store's flush each second, ext4's journal commit every 5 s)
//! would then be counted fewer times than in a real hour; `WRITES_REAL=1` paces one step every
//! `WRITES_STEP_SECONDS` of real time instead (`WRITES_MINUTES` of it, 60 by default) to check the
//! extrapolation against real time.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use outpost_tests::{free_port, site_with_people_wrapped, wait_until, Client};
use rumqttc::{Event, MqttOptions, Packet, QoS};
use serde_json::json;

const PASSWORD: &str = "Bench-Writes-2026!x";
const GW_PASSWORD: &str = "bench-gateway-pass-1";
const GATEWAYS: [&str; 2] = ["phong-a", "hanh-lang"];

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `/proc/<pid>/io` `write_bytes`.
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("io");
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("write_bytes")
}

/// The card: an ext4 image on a loop device, mounted for the box alone.
struct Card {
    image: PathBuf,
    mount: PathBuf,
}

impl Card {
    /// A card mounted at `dir/data`, where the box keeps its data.
    fn make(dir: &Path) -> Card {
        let (image, mount) = (dir.join("card.img"), dir.join("data"));
        std::fs::create_dir_all(&mount).expect("mkdir");
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output().expect(program);
            assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run("truncate", &["-s", "4G", &image.display().to_string()]);
        // Initialised whole now: by default ext4 zeroes its inode tables and journal from a kernel
        // thread after the first mount, hundreds of megabytes the card of a running box has long
        // written (and that this count must not take for the box's).
        let image_s = image.display().to_string();
        run("mkfs.ext4", &["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", &image_s]);
        Card { image, mount }
    }

    /// The command that mounts the card in a private namespace and execs the box.
    fn wrapper(&self) -> Vec<String> {
        let script = format!(
            r#"mount -o loop,noatime "{}" "{}" && exec "$@""#,
            self.image.display(),
            self.mount.display()
        );
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", &script, "card"]
            .map(str::to_owned)
            .to_vec()
    }

    /// Bytes written to the card's device so far (sectors of 512 bytes).
    fn written(&self) -> u64 {
        let image = self.image.display().to_string();
        let out = Command::new("losetup").args(["-j", &image]).output().expect("losetup");
        let text = String::from_utf8_lossy(&out.stdout);
        let device =
            text.split(':').next().and_then(|d| d.strip_prefix("/dev/")).expect("the card's loop device");
        let stat = std::fs::read_to_string(format!("/sys/block/{device}/stat")).expect("stat");
        stat.split_whitespace().nth(6).and_then(|s| s.parse::<u64>().ok()).expect("sectors written") * 512
    }
}

fn band(i: usize) -> String {
    format!("C3:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xFF)
}

fn payload(i: usize, rssi: i32, counter: u16) -> String {
    let c = counter.to_le_bytes();
    format!(r#"{{"id":"{}","rssi":{rssi},"manufacturerdata":"ffff015f01{:02x}{:02x}"}}"#, band(i), c[0], c[1])
}

/// A gateway logged in to the box's broker.
struct Gateway {
    name: &'static str,
    client: rumqttc::Client,
}

impl Gateway {
    fn connect(port: u16, name: &'static str) -> Gateway {
        let mut o = MqttOptions::new(name, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_credentials(name, GW_PASSWORD);
        let (client, mut conn) = rumqttc::Client::new(o, 10_000);
        let (acked, ack) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for event in conn.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = acked.send(());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        ack.recv_timeout(Duration::from_secs(30)).expect("the broker accepted the gateway");
        Gateway { name, client }
    }

    fn report(&self, bands: usize, rssi: i32, counter: u16) {
        for i in 0..bands {
            let topic = format!("home/{}/BTtoMQTT/{}", self.name, band(i).replace(':', ""));
            self.client.publish(topic, QoS::AtMostOnce, false, payload(i, rssi, counter)).expect("publish");
        }
    }
}

fn taken(c: &mut Client) -> u64 {
    c.get("/api/v1/presence").json()["stats"]["sightings"].as_u64().unwrap_or(0)
}

fn declare(phone: &mut Client, token: &str) {
    let res = phone.post_json(
        &format!("/api/v1/declare/{token}"),
        &json!({"temperature": "36.8", "spo2": "98", "symptoms": []}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
}

fn main() {
    let people = env("WRITES_PEOPLE", 2000) as usize;
    let step = env("WRITES_STEP_SECONDS", 10);
    let real = std::env::var("WRITES_REAL").is_ok();
    let minutes = env("WRITES_MINUTES", 60);
    let in_hour = env("WRITES_HOUR_DECLARATIONS", 250) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mqtt = format!("127.0.0.1:{port}");
    let card = Card::make(dir.path());
    let wrapper = card.wrapper();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let (mut b, mut c, ids) = site_with_people_wrapped(
        &wrapper,
        dir.path(),
        Path::new(""),
        "[web]\nrate_limits = false\n",
        "2026-11-21T00:00:00Z",
        people,
        (PASSWORD, &["--mqtt", &mqtt]),
    );
    for g in GATEWAYS {
        assert_eq!(c.post_form("/mqtt", &[("name", g), ("password", GW_PASSWORD)]).status, 303);
    }
    for i in 0..people {
        assert_eq!(c.post_json("/api/v1/bands", &json!({"id": band(i)})).status, 201);
    }
    let gateways: Vec<Gateway> = GATEWAYS.iter().map(|g| Gateway::connect(port, g)).collect();
    gateways[0].report(people, -60, 0);
    wait_until("the first round", || taken(&mut c) >= people as u64);
    for (i, id) in ids.iter().enumerate() {
        let res = c.post_json(&format!("/api/v1/bands/{}/hand-over", band(i)), &json!({"person_id": id}));
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let tokens: Vec<String> = ids
        .iter()
        .take(250)
        .map(|id| {
            c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned()
        })
        .collect();
    let pid = b.pid();
    let mut phone = Client::new(&b.url);
    println!("{people} people wearing bands, 2 gateways; set up.");

    // The hour.
    let steps = minutes * 60 / step;
    let (before, on_card, began) = (written(pid), card.written(), Instant::now());
    let mut expected = taken(&mut c);
    let mut declared = 0usize;
    for n in 0..steps {
        let due = began + Duration::from_secs(n * step);
        if real && due > Instant::now() {
            std::thread::sleep(due - Instant::now());
        }
        gateways[0].report(people, -60, n as u16 + 1);
        gateways[1].report(people, -82, n as u16 + 1);
        expected += 2 * people as u64;
        let goal = ((n + 1) as usize * in_hour).div_ceil(steps as usize);
        while declared < goal.min(tokens.len()) {
            declare(&mut phone, &tokens[declared]);
            declared += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while taken(&mut c) < expected {
            assert!(Instant::now() < deadline, "the box fell behind: {} of {expected}", taken(&mut c));
            std::thread::sleep(Duration::from_millis(20));
        }
        b.clock(&format!("advance {step}s"));
    }
    // What the last block holds is written at the next pass or within the block's time.
    std::thread::sleep(Duration::from_secs(3));
    let (hour, card_hour, elapsed) = (written(pid) - before, card.written() - on_card, began.elapsed());
    let presence = c.get("/api/v1/presence").json();
    let stats = &presence["stats"];
    println!(
        "{minutes} min of the box's clock ({} s real{}): {} sightings taken, {} samples written in {} blocks \
         ({:.1} MB compressed), {} held; {declared} declarations",
        elapsed.as_secs(),
        if real { ", paced" } else { "" },
        stats["sightings"],
        stats["samples"],
        stats["sample_blocks"],
        stats["sample_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        stats["samples_unwritten"],
    );
    let day = |bytes: u64| bytes as f64 * 24.0 * 60.0 / minutes as f64 / 1e9;
    println!(
        "written to the card: {:.1} MB in the hour → {:.2} GB a day (goal ≤ 1 GB); \
         the process's count: {:.1} MB → {:.2} GB a day",
        card_hour as f64 / 1e6,
        day(card_hour),
        hour as f64 / 1e6,
        day(hour),
    );
    let health = c.get("/api/v1/health").json();
    println!("health: card {}", health["system"]["card"]);

    // Declarations alone.
    let n = env("WRITES_DECLARATIONS", 250) as usize;
    std::thread::sleep(Duration::from_secs(2));
    let (before, on_card, began) = (written(pid), card.written(), Instant::now());
    for t in tokens.iter().cycle().take(n) {
        declare(&mut phone, t);
    }
    // The store's flush each second and ext4's journal commit (5 s) are part of a declaration's cost.
    std::thread::sleep(Duration::from_secs(6));
    let (on_card, by_process, took) = (card.written() - on_card, written(pid) - before, began.elapsed());
    // What the box writes meanwhile without them (its timers, the quiet bands' pass), over as long.
    let idle_from = card.written();
    std::thread::sleep(took);
    let idle = card.written() - idle_from;
    let per = |bytes: u64| bytes as f64 / n as f64 / 1e3;
    println!(
        "{n} declarations, each acknowledged, in {:.1} s: {:.1} KB written to the card per declaration \
         (goal ≤ 4 KB), {:.1} KB less what the idle box writes in as long ({:.0} KB); the process's count: {:.1} KB",
        took.as_secs_f64(),
        per(on_card),
        per(on_card.saturating_sub(idle)),
        idle as f64 / 1e3,
        per(by_process)
    );
}
