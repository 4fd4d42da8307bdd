//! What the bridge tests share: a server with both bridges open, a Gradio queue call as
//! `gradio_client` makes it, and an MCP session spoken as JSON-RPC by hand.

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use keepsake::{Settings, demos};
use serde_json::{Value, json};

use super::support::TestServer;

pub const CART: &str = "shopping-cart";

pub async fn start(settings: Settings) -> TestServer {
    let settings = Settings {
        gradio_api: true,
        mcp: true,
        ..settings
    };
    TestServer::start(settings, vec![demos::shopping_cart().unwrap()]).await
}

/// The `data:` payloads of a server-sent event stream, until `stop` says so or 10 s
/// pass (a stream that never ends is a failure, not a hang).
pub async fn sse_data(
    response: reqwest::Response,
    mut stop: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, bytes.next())
            .await
            .expect("the stream answered within 10 s");
        let Some(Ok(chunk)) = chunk else { return seen };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            for line in block.lines() {
                // (MCP's streams open with an empty event, for resumption.)
                if let Some(data) = line.strip_prefix("data:").filter(|d| !d.trim().is_empty()) {
                    let value: Value = serde_json::from_str(data.trim()).unwrap();
                    let done = stop(&value);
                    seen.push(value);
                    if done {
                        return seen;
                    }
                }
            }
        }
    }
}

/// One call through the Gradio queue, as `gradio_client` makes it: the outputs, or
/// the error message of a failed event. A refused join is `Err` with the answer's
/// status and body.
pub async fn gradio(
    server: &TestServer,
    hash: &str,
    data: Value,
) -> Result<Result<Vec<Value>, String>, (u16, String)> {
    let join = server
        .client
        .post(server.url(&format!("/apps/{CART}/gradio_api/queue/join")))
        .json(&json!({ "data": data, "fn_index": 0, "session_hash": hash }))
        .send()
        .await
        .unwrap();
    let status = join.status().as_u16();
    if status != 200 {
        return Err((status, join.text().await.unwrap()));
    }
    let event_id = join.json::<Value>().await.unwrap()["event_id"].clone();
    let stream = server
        .client
        .get(server.url(&format!(
            "/apps/{CART}/gradio_api/queue/data?session_hash={hash}"
        )))
        .send()
        .await
        .unwrap();
    let messages = sse_data(stream, |m| m["msg"] == "close_stream").await;
    let done = messages
        .iter()
        .find(|m| m["msg"] == "process_completed" && m["event_id"] == event_id)
        .unwrap_or_else(|| panic!("no process_completed in {messages:?}"));
    Ok(match done["success"].as_bool() {
        Some(true) => Ok(done["output"]["data"].as_array().unwrap().clone()),
        _ => Err(done["output"]["error"].as_str().unwrap().to_owned()),
    })
}

/// The cart size a successful Gradio call returned (outputs: the cart state, then
/// "Cart Size").
pub fn size(outputs: Result<Result<Vec<Value>, String>, (u16, String)>) -> Value {
    outputs.unwrap().unwrap()[1].clone()
}

/// A session of the MCP bridge, spoken as JSON-RPC over streamable HTTP.
pub struct Mcp<'a> {
    server: &'a TestServer,
    pub session: String,
    next_id: u64,
}

impl<'a> Mcp<'a> {
    pub async fn post(
        server: &TestServer,
        session: Option<&str>,
        body: Value,
    ) -> (Option<String>, Option<Value>) {
        let response = Mcp::send(server, session, body.clone()).await;
        assert!(
            response.status().is_success(),
            "MCP answered {}",
            response.status()
        );
        let session = response
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        if body.get("id").is_none() {
            return (session, None);
        }
        let answer = sse_data(response, |m| m.get("id").is_some()).await;
        (session, answer.into_iter().find(|m| m.get("id").is_some()))
    }

    pub async fn send(
        server: &TestServer,
        session: Option<&str>,
        body: Value,
    ) -> reqwest::Response {
        let mut request = server
            .client
            .post(server.url(&format!("/apps/{CART}/mcp")))
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request.send().await.unwrap()
    }

    /// Ends the MCP session (as a client closing it does).
    pub async fn close(self) {
        let response = self
            .server
            .client
            .delete(self.server.url(&format!("/apps/{CART}/mcp")))
            .header("mcp-session-id", &self.session)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "closing answered {}",
            response.status()
        );
    }

    pub async fn open(server: &'a TestServer) -> Mcp<'a> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "keepsake-test", "version": "0"}}});
        let (session, answer) = Mcp::post(server, None, init).await;
        assert!(answer.unwrap()["result"]["serverInfo"].is_object());
        let session = session.expect("an Mcp-Session-Id");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        Mcp::post(server, Some(&session), initialized).await;
        Mcp {
            server,
            session,
            next_id: 1,
        }
    }

    /// A tool call's result: `Ok(structured content)` or `Err(message)` of a tool error.
    pub async fn call(&mut self, arguments: Value) -> Result<Value, String> {
        self.next_id += 1;
        let call = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": "add_items", "arguments": arguments}});
        let (_, answer) = Mcp::post(self.server, Some(&self.session), call).await;
        let result = answer.unwrap()["result"].clone();
        match result["isError"].as_bool() {
            Some(true) => Err(result["content"][0]["text"].as_str().unwrap().to_owned()),
            _ => Ok(result["structuredContent"].clone()),
        }
    }
}
