//! The Chat demo in a real page, by accessible names: the assistant's reply grows on
//! the page while it streams (a partial reply is seen before the final one), the
//! history is the session's (two tabs, each its own; a refresh starts a new chat),
//! Stop ends a reply, the history keeping what was written so far, and a network
//! cut of two seconds mid-reply loses and doubles no word of it.

use keepsake::demos;
use keepsake_e2e::{Browser, CutProxy, RunningServer, free_port, xpath_literal};
use serde_json::Value;

/// The chat log, found by its accessible name.
const LOG: &str = "//*[@role='log'][@aria-labelledby=//div[normalize-space(.)='Conversation']/@id]";

/// The messages of one role in the log, by their accessible names.
fn messages(role: &str) -> String {
    format!("{LOG}//article[@aria-label={}]", xpath_literal(role))
}

/// The text a reply's Markdown shows (its marks gone, its white space folded), as
/// the page's text is compared: the demo's marks each wrap one word, and its list
/// items start their lines with "- ".
fn shown(markdown: &str) -> String {
    markdown
        .lines()
        .map(|line| line.strip_prefix("- ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
        .replace(['*', '`'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reply to `text` as the page shows it.
fn reply_to(text: &str) -> String {
    shown(&demos::answer_to(text))
}

/// The texts of the log's messages, in order, as `role: text` (white space folded).
async fn transcript(browser: &Browser) -> Vec<String> {
    let found = browser
        .script(
            "return [...document.querySelectorAll('[role=log] article')]
               .map((m) => m.getAttribute('aria-label') + ': ' + m.textContent.replace(/\\s+/g, ' ').trim());",
        )
        .await;
    match found {
        Value::Array(lines) => lines
            .into_iter()
            .map(|l| l.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("unexpected {other}"),
    }
}

/// Sends `text` with the Send button and records, in the page, every text the last
/// assistant message shows until it shows `reply` in full: the reply as it grew.
async fn send_and_watch(browser: &Browser, text: &str, reply: &str) -> Vec<String> {
    browser.type_into("Message", text).await;
    // The watcher starts before the click, so it sees the first partial too.
    watch_replies(browser).await;
    browser.button("Send").await.click().await.expect("click");
    replies_seen(browser, reply).await
}

/// Starts recording, in the page, every text the last assistant message shows.
async fn watch_replies(browser: &Browser) {
    browser
        .script(
            "window.seenReplies = [];
             window.watching = setInterval(() => {
               const last = [...document.querySelectorAll('[role=log] article[aria-label=Assistant]')].pop();
               const text = last ? last.textContent.replace(/\\s+/g, ' ').trim() : '';
               const seen = window.seenReplies;
               if (text && seen[seen.length - 1] !== text) seen.push(text);
             }, 5);",
        )
        .await;
}

/// Waits until the last assistant message shows `reply` in full, and returns every
/// text it showed since [`watch_replies`].
async fn replies_seen(browser: &Browser, reply: &str) -> Vec<String> {
    browser
        .find(&format!(
            "{}[normalize-space(.)={}]",
            messages("Assistant"),
            xpath_literal(reply)
        ))
        .await;
    let seen = browser
        .script("clearInterval(window.watching); return window.seenReplies;")
        .await;
    match seen {
        Value::Array(texts) => texts
            .into_iter()
            .map(|t| t.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("unexpected {other}"),
    }
}

/// Every text in `seen` was a beginning of `reply`, and the last is all of it.
fn grew_into(seen: &[String], reply: &str) {
    assert_eq!(seen.last().map(String::as_str), Some(reply));
    for partial in &seen[..seen.len() - 1] {
        assert!(
            reply.starts_with(partial.as_str()) && partial.len() < reply.len(),
            "{partial:?} is not a beginning of the reply"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_streams_in_and_the_history_is_kept() {
    let server = RunningServer::start(free_port(), vec![demos::chat().expect("demo")]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/chat")).await;
    browser.find(LOG).await;

    let reply = reply_to("Hello there");
    let seen = send_and_watch(&browser, "Hello there", &reply).await;
    // Partial replies were on the page before the final one: each a beginning of it.
    assert!(
        seen.len() > 2,
        "the reply did not grow on the page: {seen:?}"
    );
    grew_into(&seen, &reply);
    // The textbox cleared; the user's message is named as theirs.
    browser
        .wait_value("Message", str::is_empty, "an empty textbox")
        .await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: Hello there".to_owned(),
            format!("Assistant: {reply}")
        ]
    );

    // Enter sends too; the history (the session's state) holds both turns.
    let second = reply_to("And again");
    browser.type_into("Message", "And again\u{E007}").await;
    browser
        .find(&format!(
            "{}[normalize-space(.)={}]",
            messages("Assistant"),
            xpath_literal(&second)
        ))
        .await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: Hello there".to_owned(),
            format!("Assistant: {reply}"),
            "User: And again".to_owned(),
            format!("Assistant: {second}"),
        ]
    );

    // Once the log overflows, the end of its newest message is in view (a reply is
    // taller than the log: its last words are what shows).
    for text in ["Three", "Four", "Five"] {
        browser
            .type_into("Message", &format!("{text}\u{E007}"))
            .await;
        browser
            .find(&format!(
                "{}[normalize-space(.)={}]",
                messages("Assistant"),
                xpath_literal(&reply_to(text))
            ))
            .await;
    }
    let view = browser
        .script(
            "const log = document.querySelector('[role=log]');
             const last = [...log.querySelectorAll('article')].pop();
             const l = log.getBoundingClientRect(), m = last.getBoundingClientRect();
             return [log.scrollHeight > log.clientHeight, m.bottom > l.top && m.bottom <= l.bottom + 1];",
        )
        .await;
    assert_eq!(
        view,
        serde_json::json!([true, true]),
        "[overflows, newest message's end in view]"
    );
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tab_has_its_own_chat_and_a_refresh_starts_a_new_one() {
    let server = RunningServer::start(free_port(), vec![demos::chat().expect("demo")]).await;
    let browser = Browser::launch(None).await;
    let page = server.url("/apps/chat");
    browser.goto(&page).await;
    let first = reply_to("first tab");
    send_and_watch(&browser, "first tab", &first).await;

    let first_tab = browser.client.window().await.expect("window");
    let second_tab = browser
        .client
        .new_window(true)
        .await
        .expect("new tab")
        .handle;
    browser
        .client
        .switch_to_window(second_tab)
        .await
        .expect("switch");
    browser.goto(&page).await;
    browser.find(LOG).await;
    assert!(
        transcript(&browser).await.is_empty(),
        "a new tab starts a new chat"
    );
    let second = reply_to("second tab");
    send_and_watch(&browser, "second tab", &second).await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: second tab".to_owned(),
            format!("Assistant: {second}")
        ]
    );

    browser
        .client
        .switch_to_window(first_tab)
        .await
        .expect("switch back");
    let again = reply_to("still first");
    send_and_watch(&browser, "still first", &again).await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: first tab".to_owned(),
            format!("Assistant: {first}"),
            "User: still first".to_owned(),
            format!("Assistant: {again}"),
        ]
    );

    browser.client.refresh().await.expect("refresh");
    browser.find(LOG).await;
    let fresh = reply_to("after refresh");
    send_and_watch(&browser, "after refresh", &fresh).await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: after refresh".to_owned(),
            format!("Assistant: {fresh}")
        ],
        "a refresh starts a new chat"
    );
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_reply_and_the_history_keeps_what_was_written() {
    let server = RunningServer::start(free_port(), vec![demos::chat().expect("demo")]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/chat")).await;
    browser.find(LOG).await;
    let full = reply_to("Tell me more");
    browser.type_into("Message", "Tell me more").await;
    browser.button("Send").await.click().await.expect("click");
    // Some words in (a reply takes about five seconds), then Stop.
    browser
        .find(&format!(
            "{}[string-length(normalize-space(.)) > 60]",
            messages("Assistant")
        ))
        .await;
    browser.button("Stop").await.click().await.expect("click");
    let last = || async {
        transcript(&browser)
            .await
            .last()
            .cloned()
            .unwrap_or_default()
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stopped = last().await;
    let stopped_text = stopped
        .strip_prefix("Assistant: ")
        .unwrap_or_else(|| panic!("no reply shown: {stopped:?}"))
        .to_owned();
    assert!(
        full.starts_with(&stopped_text) && stopped_text.len() < full.len() / 2,
        "the stopped reply {stopped_text:?} is not an early part of the reply"
    );
    // It grows no more.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(last().await, stopped);

    // The history kept it: the next turn's conversation, the server's, has it.
    let next = reply_to("Go on");
    browser.type_into("Message", "Go on\u{E007}").await;
    browser
        .find(&format!(
            "{}[normalize-space(.)={}]",
            messages("Assistant"),
            xpath_literal(&next)
        ))
        .await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: Tell me more".to_owned(),
            stopped,
            "User: Go on".to_owned(),
            format!("Assistant: {next}"),
        ]
    );
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_mid_reply_loses_and_doubles_no_word() {
    let server = RunningServer::start(free_port(), vec![demos::chat().expect("demo")]).await;
    let network = CutProxy::start(server.port).await;
    let browser = Browser::launch(None).await;
    browser.goto(&network.url("/apps/chat")).await;
    browser.find(LOG).await;

    let full = reply_to("Tell me more");
    browser.type_into("Message", "Tell me more").await;
    watch_replies(&browser).await;
    browser.button("Send").await.click().await.expect("click");
    // Some words in (a reply takes about five seconds), then the network goes for
    // two seconds: the reply's connection drops mid-answer, and so does the feed.
    browser
        .find(&format!(
            "{}[string-length(normalize-space(.)) > 60]",
            messages("Assistant")
        ))
        .await;
    let before_cut = transcript(&browser)
        .await
        .last()
        .cloned()
        .unwrap_or_default();
    network.cut(std::time::Duration::from_secs(2));
    let before_cut = before_cut.strip_prefix("Assistant: ").unwrap_or_default();
    assert!(
        !before_cut.is_empty() && before_cut.len() < full.len() / 2,
        "the reply was not under way at the cut: {before_cut:?}"
    );

    // The page comes back for the rest: every text it showed was a beginning of the
    // reply, and it ends with all of it, once.
    let seen = replies_seen(&browser, &full).await;
    grew_into(&seen, &full);
    assert_eq!(
        transcript(&browser).await,
        [
            "User: Tell me more".to_owned(),
            format!("Assistant: {full}")
        ]
    );

    // The history holds the whole reply: the next turn's conversation, the
    // server's, has it.
    let next = reply_to("Go on");
    browser.type_into("Message", "Go on\u{E007}").await;
    browser
        .find(&format!(
            "{}[normalize-space(.)={}]",
            messages("Assistant"),
            xpath_literal(&next)
        ))
        .await;
    assert_eq!(
        transcript(&browser).await,
        [
            "User: Tell me more".to_owned(),
            format!("Assistant: {full}"),
            "User: Go on".to_owned(),
            format!("Assistant: {next}"),
        ]
    );
    browser.close().await;
    server.stop().await;
}
