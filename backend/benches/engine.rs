//! Criterion micro-benchmarks, in process: the engine alone (one cart event, one
//! counter event, starting a session), one cart event through Keepsake's whole
//! router beside a bare axum route (the HTTP layers without a socket), and sealing
//! plus opening a 1 KiB browser-state value. Medians and
//! spread are in criterion's report; `scripts/bench` copies them into BENCHMARKS.md.

use std::hint::black_box;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use keepsake::protocol::event::EventRequest;
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Server, Settings, demos};
use serde_json::{Value, json};
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

mod support;
use support::counter_app;
#[path = "support/bare.rs"]
mod bare;

// The allocator keepsake-demo runs on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn engine(c: &mut Criterion) {
    // As keepsake-demo runs (RUST_LOG, default info): without a subscriber, tracing
    // falls back to `log` and evaluates every span's fields.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::sink)
        .init();
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
                    listener: ListenerId(0),
                    inputs: vec![Value::Null],
                    held: Vec::new(),
                    rendered: None,
                    shown: Vec::new(),
                };
                black_box(
                    server
                        .run_event("bench-counter", &counter_session, request)
                        .await,
                )
            })
        })
    });

    let mut carts = RenewedCart::start(&runtime, &server);
    c.bench_function("cart add_items event (with cart.change listener)", |b| {
        b.iter(|| {
            let cart_session = carts.next_event();
            runtime.block_on(async {
                let request = EventRequest {
                    listener: ListenerId(0),
                    inputs: vec![json!(["Milk"]), Value::Null],
                    held: Vec::new(),
                    rendered: None,
                    shown: Vec::new(),
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

    // The same event as a request through the router: extraction, JSON in and out,
    // middleware. The bare route parses the same body and answers the same bytes.
    let router = keepsake::app(&server);
    let mut carts = RenewedCart::start(&runtime, &server);
    c.bench_function("cart add_items event through the router (no socket)", |b| {
        b.iter(|| {
            let http_session = carts.next_event();
            let request = post(
                &format!("/api/apps/shopping-cart/sessions/{http_session}/events"),
                CART_EVENT,
            );
            black_box(runtime.block_on(respond(&router, request)))
        })
    });
    let bare = bare::router();
    c.bench_function("bare axum route, same body (no socket)", |b| {
        b.iter(|| black_box(runtime.block_on(respond(&bare, post("/bare/events", CART_EVENT)))))
    });
    // What the server adds per browser-state value an event carries: open what the
    // page sent, seal what goes back (AES-256-GCM, keys derived once at start).
    let sealer =
        keepsake::sealing::Sealer::new("bench", "slot", &["a bench secret of 32 bytes or more"]);
    let kib = serde_json::to_vec(&"x".repeat(1022)).expect("json");
    assert_eq!(kib.len(), 1024);
    c.bench_function("browser state: seal + open a 1 KiB value", |b| {
        b.iter(|| {
            let sealed = sealer.seal(0, None, black_box(&kib)).expect("seals");
            black_box(sealer.open(&sealed).expect("opens"))
        })
    });
}

/// A cart session renewed every 20 events, as in the HTTP benchmark, so carts stay
/// the size a person's would.
struct RenewedCart<'a> {
    runtime: &'a tokio::runtime::Runtime,
    server: &'a Server,
    session: SessionId,
    events: u32,
}

impl<'a> RenewedCart<'a> {
    fn start(runtime: &'a tokio::runtime::Runtime, server: &'a Server) -> Self {
        let mut cart = RenewedCart {
            runtime,
            server,
            session: SessionId::from_bytes([0; 16]),
            events: 0,
        };
        cart.renew();
        cart
    }

    fn renew(&mut self) {
        self.session = self
            .runtime
            .block_on(self.server.start_session("shopping-cart"))
            .expect("session")
            .session_id;
    }

    /// The session the next event goes to.
    fn next_event(&mut self) -> SessionId {
        self.events += 1;
        if self.events.is_multiple_of(20) {
            self.renew();
        }
        self.session
    }
}

const CART_EVENT: &str = r#"{"listener":0,"inputs":[["Milk"],null]}"#;

fn post(path: &str, body: &'static str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

/// Runs `request` through `router` and reads the whole response body.
async fn respond(router: &Router, request: Request<Body>) -> Bytes {
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
}

criterion_group!(benches, engine);
criterion_main!(benches);
