//! The province on PostgreSQL, beyond what the province's other tests run on both stores: the schema
//! the server finds.

use std::process::Command;

use outpost_tests::{pg, province_bin, province_cmd as province};

/// The server brings an empty database to its schema, and refuses one newer than its own (a server
/// older than the database would misread it) with a message that says what to do.
#[test]
fn the_schema_is_applied_once_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    let pg = pg::cluster();
    let url = pg.database("schema");
    province(&pdata, &["init"]);
    province(&pdata, &["site", "add", "site-a", "--district", "Hòa Vang"]);
    let show = || {
        Command::new(province_bin())
            .arg("--data")
            .arg(&pdata)
            .args(["--database", &url, "site", "show", "site-a"])
            .output()
            .expect("outpost-province")
    };
    for _ in 0..2 {
        let out = show();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{}", "no documents yet");
    }
    assert_eq!(
        pg.psql("schema", "SELECT string_agg(version::text, ',') FROM schema_version").as_deref(),
        Ok("1")
    );
    pg.psql("schema", "INSERT INTO schema_version (version) VALUES (2)").expect("a newer server was here");
    let out = show();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("schema is version 2, newer than this server's 1"), "{said}");
}
