//! A bounded fuzz pass over protocol decoding and event dispatch (proptest): arbitrary
//! bytes and arbitrary well-formed requests never panic the server, never produce a
//! server-side error for what is the client's fault, and rejected requests change no
//! state. The case count is fixed so the pass takes seconds in the test command;
//! raise `PROPTEST_CASES` to search longer.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::EventRequest;
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Server, Settings, demos};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The saved-login demo's secret here (the test's own: the library holds none).
const SECRET: &str = "the fuzz test's own secret, 32 bytes or more";

/// One server and runtime for all cases: building them per case would measure setup.
fn fixture() -> &'static (tokio::runtime::Runtime, Server) {
    static FIXTURE: OnceLock<(tokio::runtime::Runtime, Server)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let settings = Settings {
            max_events_per_second: u32::MAX,
            ..Settings::default()
        };
        let server = runtime
            .block_on(async {
                Server::new(
                    settings,
                    [
                        demos::shopping_cart().unwrap(),
                        demos::visitor_counter().unwrap(),
                        demos::saved_login("saved-login", Some(SECRET)).unwrap(),
                    ],
                )
            })
            .unwrap();
        (runtime, server)
    })
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["Milk", "Water", "Cereal", "Orange Juice", ""])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_request() -> impl Strategy<Value = EventRequest> {
    (0u32..6, prop::collection::vec(any_json(), 0..4)).prop_map(|(listener, inputs)| EventRequest {
        listener: ListenerId(listener),
        inputs,
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    })
}

/// Whether the cart of `session` holds `expected` items. Adding nothing fires no
/// change listener and so reports no size; this adds one Water and reads the size the
/// change listener reports (so the cart is one longer afterwards).
async fn cart_len_is(server: &Server, session: &SessionId, expected: usize) -> bool {
    let add_water = EventRequest {
        listener: ListenerId(0),
        inputs: vec![json!(["Water"]), Value::Null],
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    };
    let result = server
        .run_event("shopping-cart", session, add_water)
        .await
        .unwrap();
    let size = result.updates.iter().find_map(|u| u.value.clone());
    size == Some(json!((expected + 1) as f64))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<EventRequest>(&bytes);
        let _ = serde_json::from_slice::<keepsake::protocol::config::AppConfig>(&bytes);
        let _ = String::from_utf8_lossy(&bytes).parse::<SessionId>();
    }

    #[test]
    fn arbitrary_requests_are_answered_cleanly_and_rejections_change_nothing(
        requests in prop::collection::vec(any_request(), 1..6),
        app in prop::sample::select(vec!["shopping-cart", "visitor-counter", "saved-login"]),
    ) {
        let (runtime, server) = fixture();
        runtime.block_on(async {
            let session = server.start_session(app).await.unwrap().session_id;
            for request in requests {
                if let Err(error) = server.run_event(app, &session, request.clone()).await {
                    let kind = error.kind();
                    prop_assert!(
                        matches!(kind, ErrorKind::UnknownListener | ErrorKind::InvalidInput | ErrorKind::BadRequest),
                        "{request:?} on {app} gave {kind:?}: {error}"
                    );
                }
                // The same request on a fresh, empty cart: if rejected, the cart is
                // still empty.
                let cart = server.start_session("shopping-cart").await.unwrap().session_id;
                if server.run_event("shopping-cart", &cart, request.clone()).await.is_err() {
                    prop_assert!(cart_len_is(server, &cart, 0).await, "{request:?} was rejected but changed the cart");
                }
            }
            Ok(())
        })?;
    }
}
