//! BrowserState encrypt + decrypt of a 1 KiB value, timed in the browser. Runs in
//! the test command (checking the round trip) and, in release, in `scripts/bench`,
//! which collects the `BENCH` lines for BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keepsake_frontend::browser_state::BrowserStateSlot;
use keepsake_shared::AppId;
use keepsake_shared::config::BrowserStateConfig;
use serde_json::json;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const BATCHES: usize = 15;
const PER_BATCH: usize = 200;

#[wasm_bindgen_test]
fn encrypt_and_decrypt_one_kib() {
    let slot = BrowserStateSlot::new(
        &AppId("bench".into()),
        &BrowserStateConfig {
            storage_key: "bench".into(),
            secrets: vec!["a benchmark secret that is long enough: 32+ bytes".into()],
            default: json!(null),
        },
    );
    let value = json!("x".repeat(1024 - 2)); // 1 KiB of JSON text
    let performance = web_sys::window().unwrap().performance().unwrap();
    let mut per_op_us: Vec<f64> = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = performance.now();
        for _ in 0..PER_BATCH {
            let sealed = slot.encode(&value).unwrap();
            let opened = slot.decode(&sealed).unwrap();
            assert_eq!(opened.value, value);
        }
        per_op_us.push((performance.now() - start) * 1000.0 / PER_BATCH as f64);
    }
    per_op_us.sort_by(f64::total_cmp);
    let median = per_op_us[BATCHES / 2];
    console_log!(
        "BENCH | BrowserState encrypt + decrypt, 1 KiB, in headless Chromium | median {median:.1} µs (min {:.1}, max {:.1}; {BATCHES} batches of {PER_BATCH}) | target < 100 µs |",
        per_op_us[0],
        per_op_us[BATCHES - 1]
    );
}
