//! Device checks (`/check` → `POST /api/reports`) through the real server: checked field by
//! field, kept in SQLite across a kill -9, listed for the GM only, counted in `/metrics`, and
//! a script that posts in a loop is slowed down before it can push the real ones out.
//! The page itself, in Chromium and WebKit, is tested in `player/e2e/check.test.mjs`.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

fn report(device: &str, verdict: &str) -> Value {
    json!({
        "device": device, "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)", "engine": "hlsjs-mms",
        "verdict": verdict, "started": true, "seconds": 60, "samples": 570, "syncP50Ms": 1.5, "syncP95Ms": 4.5,
        "stalls": 0, "seeks": 1, "rateChanges": 6, "rateIgnored": 0, "correction": "rate", "hiddenSeconds": 20,
        "advancedWhileHidden": true, "outputLatencyMs": null, "outputDelayMs": 180, "problems": []
    })
}

async fn post(s: &Server, body: &Value) -> (u16, Value, Option<String>) {
    let resp = reqwest::Client::new().post(s.url("/api/reports")).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn checks_are_validated_kept_listed_for_the_gm_and_counted() {
    let mut s = Server::with_fixtures("checks").await;
    let (st, kept, _) = post(&s, &report("iPhone · Safari", "good")).await;
    assert_eq!(st, 201, "{kept}");
    assert_eq!(kept["device"], "iPhone · Safari");
    assert!(kept["id"].as_i64().is_some() && kept["receivedAt"].as_u64().unwrap() > 1_700_000_000_000, "{kept}");

    // Bad input names the field and keeps nothing.
    for (change, field) in [
        (json!({"syncP95Ms": -1}), "syncP95Ms"),
        (json!({"seconds": 1e9}), "seconds"),
        (json!({"hiddenSeconds": 61}), "hiddenSeconds"),
        (json!({"device": "   "}), "device"),
        (json!({"outputDelayMs": 5000}), "outputDelayMs"),
    ] {
        let mut body = report("x", "poor");
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let (st, err, _) = post(&s, &body).await;
        assert_eq!(st, 400, "{field}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().starts_with(field), "{field}: {err}");
    }
    let mut unknown = report("x", "poor");
    unknown["engine"] = json!("flash");
    assert_eq!(post(&s, &unknown).await.0, 400);
    let raw = reqwest::Client::new()
        .post(s.url("/api/reports"))
        .header("content-type", "application/json")
        .body("{\"device\": \"half")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // The list is the GM's, newest first.
    assert_eq!(s.get("/api/reports").await.status(), 401);
    let (st, _, _) = post(&s, &report("Pixel · Chrome", "fair")).await;
    assert_eq!(st, 201);
    let list = s.gm(Method::GET, "/api/reports").send().await.unwrap().json::<Value>().await.unwrap();
    let devices: Vec<&str> = list["items"].as_array().unwrap().iter().map(|c| c["device"].as_str().unwrap()).collect();
    assert_eq!(devices, ["Pixel · Chrome", "iPhone · Safari"]);
    assert_eq!(list["items"][1]["advancedWhileHidden"], true);
    assert_eq!(s.gm(Method::GET, "/api/reports?limit=0").send().await.unwrap().status(), 400);
    assert_eq!(
        s.gm(Method::GET, "/api/reports?limit=1").send().await.unwrap().json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("bardcast_device_checks_total{engine=\"hlsjs-mms\",verdict=\"good\"} 1"), "{metrics}");
    assert!(metrics.contains("bardcast_device_checks_total{engine=\"hlsjs-mms\",verdict=\"fair\"} 1"));
    assert!(metrics.contains("bardcast_device_checks_total{engine=\"native\",verdict=\"good\"} 0"));

    // A loop of posts is slowed down: 20 at once at most (seven taken above: two kept, five
    // refused by the handler; bodies that are not a report at all never reach it), then 429.
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..30 {
        let (st, _, retry) = post(&s, &report(&format!("bot {i}"), "poor")).await;
        match st {
            201 => accepted += 1,
            429 => {
                refused = retry;
                break;
            }
            other => panic!("status {other}"),
        }
    }
    assert!((13..=14).contains(&accepted), "{accepted} accepted before the limit");
    assert!(refused.unwrap().parse::<u64>().unwrap() >= 1);

    // Kept across a kill -9.
    let before = s.gm(Method::GET, "/api/reports?limit=500").send().await.unwrap().json::<Value>().await.unwrap();
    s.kill9();
    let s = Server::start_in(&s.dir.clone(), &s.music.clone(), Options::default());
    let after = s.gm(Method::GET, "/api/reports?limit=500").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(after, before, "checks are kept in SQLite");
}
