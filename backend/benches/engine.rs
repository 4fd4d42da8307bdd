//! Criterion micro-benchmarks of the engine, in process (no HTTP): one cart event,
//! one counter event, and starting a session. Medians and spread are in criterion's
//! report; `scripts/bench` copies them into BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keepsake::protocol::DependencyId;
use keepsake::protocol::event::EventRequest;
use keepsake::{Server, Settings, demos};
use serde_json::{Value, json};

mod support;
use support::counter_app;

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(async {
        Server::new(
            Settings::default(),
            [demos::shopping_cart().expect("demo"), counter_app()],
        )
        .expect("server")
    });

    let counter_session = runtime
        .block_on(server.start_session("bench-counter"))
        .expect("session")
        .session_id;
    c.bench_function("counter event (state read, write, outputs)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = EventRequest {
                    dependency: DependencyId(0),
                    inputs: vec![Value::Null],
                };
                black_box(
                    server
                        .run_event("bench-counter", &counter_session, request)
                        .await,
                )
            })
        })
    });

    // A cart renewed every 20 events, as in the HTTP benchmark.
    let mut cart_session = runtime
        .block_on(server.start_session("shopping-cart"))
        .expect("session")
        .session_id;
    let mut events = 0u32;
    c.bench_function("cart add_items event (with cart.change listener)", |b| {
        b.iter(|| {
            events += 1;
            if events.is_multiple_of(20) {
                cart_session = runtime
                    .block_on(server.start_session("shopping-cart"))
                    .expect("session")
                    .session_id;
            }
            runtime.block_on(async {
                let request = EventRequest {
                    dependency: DependencyId(0),
                    inputs: vec![json!(["Milk"]), Value::Null],
                };
                black_box(
                    server
                        .run_event("shopping-cart", &cart_session, request)
                        .await,
                )
            })
        })
    });

    c.bench_function("start a session", |b| {
        b.iter(|| black_box(runtime.block_on(server.start_session("bench-counter"))))
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
