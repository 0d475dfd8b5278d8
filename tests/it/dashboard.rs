//! The dashboard in real headless Chromium against a live collector with seeded telemetry:
//! `www/tests/dashboard.mjs` (playwright-core) checks the numbers and that no console error
//! happens, and keeps screenshots under `target/tmp/dashboard/`.
//!
//! Needs Node, `npm ci --prefix www` and Chromium (`SEXTANT_CHROMIUM`, else `chromium` on PATH).
//! Without them it skips loudly, unless `SEXTANT_REQUIRE_BROWSER` is set (CI sets it).

use std::path::Path;

use crate::browser_tools;
use crate::collect::monitoring::{evaluate, seed_drifted};
use crate::collect::{Served, serve, sqlite_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_seeded_drift_performance_and_alerts_in_chromium() {
    let Some((chromium, script)) = browser_tools("dashboard.mjs", &[]) else { return };
    let db = collector::Database::Sqlite(sqlite_path("dashboard"));
    let s: Served = serve(&db, |c| {
        c.monitoring.evaluate_every = collector::monitor::Width::parse("1d").unwrap();
    })
    .await;
    let (_, now) = seed_drifted(&s).await;
    let outcome = evaluate(&s, now).await;
    assert_eq!(outcome["fired"], 4, "{outcome}");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let expect = serde_json::json!({
        "model": "wine",
        "version": "1",
        "health": "4 firing",
        "drift": { "alcohol": true, "acidity": false, "color": true },
        "drifted": "2 of 3",
        "first_drifted": "alcohol",
        "click": "color",
        "accuracy": "0.800 [",
        "predictions": 300,
        "firing": 4,
        "findings": ["alcohol:out_of_range", "color:new_categories"],
        "traffic_rows": 2,
    });
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("SEXTANT_URL", &s.url)
        .env("SEXTANT_KEY", &s.keys.read)
        .env("SEXTANT_CHROMIUM", &chromium)
        .env("SEXTANT_ARTIFACTS", &artifacts)
        .env("SEXTANT_EXPECT", expect.to_string())
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the dashboard checks failed:\n{text}");
    eprintln!("{text}");
    for shot in ["models.png", "model.png", "histogram.png", "wrong-key.png"] {
        assert!(artifacts.join(shot).is_file(), "no screenshot {shot}");
    }
}
