//! Two `keepsake-demo` processes on one Redis, no sticky sessions: every event goes
//! to a randomly chosen instance. Carts and the visitor counter must end exact, and a
//! change made through one instance must reach the pages open on the other.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keepsake::protocol::ComponentId;
use rand::Rng;
use serde_json::{Value, json};
use support::{RedisProcess, TestServer, component, listener_named, value_of};

/// One backend process; killed when dropped.
struct Instance {
    child: Child,
    client: TestServer,
}

impl Instance {
    fn start(redis: &RedisProcess) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keepsake-demo"))
            .args(["--addr", "127.0.0.1:0", "--store", &redis.url()])
            .args(["--store-namespace", "multi", "--heartbeat", "200ms"])
            // One secret for every instance, as a deployment gives them.
            .args(["--secret", "the instances' shared secret, 32 bytes or more"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("keepsake-demo starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the serving line");
        let base = line
            .trim()
            .strip_prefix("Keepsake is serving on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Instance {
            child,
            client: TestServer::external(base),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pick(instances: &[Instance]) -> &TestServer {
    &instances[rand::rng().random_range(0..instances.len())].client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_serve_one_app_without_sticky_sessions() {
    let redis = RedisProcess::start();
    let instances = [Instance::start(&redis), Instance::start(&redis)];

    // Carts: 20 sessions add 10 items each, every event on a random instance.
    let config = instances[0].client.config("shopping-cart").await;
    let add = listener_named(&config, "add_items");
    let size = component(&config, "Cart Size");
    let carts = futures::future::join_all((0..20).map(|_| {
        let instances = &instances;
        async move {
            let session = pick(instances).start_session("shopping-cart").await;
            let mut last = None;
            for _ in 0..10 {
                let result = pick(instances)
                    .event(
                        "shopping-cart",
                        &session,
                        add,
                        vec![json!(["Milk"]), Value::Null],
                    )
                    .await
                    .unwrap();
                last = value_of(&result, size);
            }
            last
        }
    }))
    .await;
    assert!(
        carts.iter().all(|size| *size == Some(json!(10.0))),
        "every cart holds exactly its 10 items: {carts:?}"
    );

    // The visitor counter: a page open on instance 0 sees visits made through 1.
    let config = instances[0].client.config("visitor-counter").await;
    let visit = listener_named(&config, "visit");
    let total = component(&config, "Total Visitors");
    let watcher = instances[0].client.start_session("visitor-counter").await;
    let mut page = instances[0]
        .client
        .open_feed("visitor-counter", &watcher)
        .await;
    // What a page gets on attaching: the current count. Only then visit, so that
    // what comes next can only be the push.
    let attached = page.next_push(Duration::from_secs(5)).await;
    assert!(attached.is_some_and(|update| update.component == total));
    let visitor = instances[1].client.start_session("visitor-counter").await;
    let first: u64 = shown_count(
        &instances[1]
            .client
            .event("visitor-counter", &visitor, visit, vec![Value::Null])
            .await
            .unwrap(),
        total,
    );
    let pushed = page.next_push(Duration::from_secs(5)).await;
    assert_eq!(
        pushed.map(|update| (update.component, update.value)),
        Some((total, Some(json!(first.to_string())))),
        "instance 0's page saw the visit made on instance 1"
    );

    // 200 concurrent visits from 20 sessions on random instances: none lost.
    futures::future::join_all((0..20).map(|_| {
        let instances = &instances;
        async move {
            let session = pick(instances).start_session("visitor-counter").await;
            for _ in 0..10 {
                pick(instances)
                    .event("visitor-counter", &session, visit, vec![Value::Null])
                    .await
                    .unwrap();
            }
        }
    }))
    .await;
    let last = shown_count(
        &pick(&instances)
            .event("visitor-counter", &visitor, visit, vec![Value::Null])
            .await
            .unwrap(),
        total,
    );
    assert_eq!(last, first + 201, "every concurrent visit counted once");
    drop(page);
    assert!(matches!(
        instances[1].client.health().await["status"].as_str(),
        Some("ok")
    ));
}

fn shown_count(result: &keepsake::protocol::event::EventResult, total: ComponentId) -> u64 {
    value_of(result, total)
        .and_then(|value| value.as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("a count in {result:?}"))
}
