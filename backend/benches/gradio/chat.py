"""A streamed chat in Gradio, the same shape as Keepsake's Chat demo, for the
side-by-side streaming benchmark (scripts/bench, backend/examples/chat_bench.rs):
the history in a `gr.State`, a generator streaming the reply word by word into a
`gr.Chatbot` (messages), the textbox cleared. The reply is the demo's
(`keepsake::demos::answer_to`), word for word; no pause between words, as the
benchmark counts bytes and work, not time.

Usage: python chat.py PORT
"""

import os
import sys

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402


def answer_to(text):
    words = len(text.split())
    return (
        f"You wrote {words} word{'' if words == 1 else 's'}: \u201c{text.strip()}\u201d. "
        "This reply is streamed word by word, and the chat history keeps it once it is complete.\n\n"
        "Here is what happens while you read it:\n\n"
        "- each **word** reaches the page as a *change* to what it shows, not as a copy "
        "of the whole conversation;\n"
        "- the server renders only the message that grows, so a long chat costs no more "
        "per word than a short one;\n"
        "- the **Stop** button ends the reply at once, and the history keeps what was "
        "written so far;\n"
        "- a refresh starts a new chat, because the history is a session `State` held on "
        "the server.\n\n"
        "A real assistant would think here, and its words would come at the pace of a "
        "model: a few dozen a second, merged by the server into at most thirty updates a "
        "second so that a slow page is never flooded. Nothing of this reply is sent twice, "
        "and nothing of it is kept until it is complete or stopped.\n\n"
        "Write another message to see the history grow: each reply still costs only its "
        "own words."
    )


def send(text, history):
    history = history + [{"role": "user", "content": text.strip()}]
    words = answer_to(text).split(" ")
    yield history, history, ""
    for count in range(1, len(words) + 1):
        shown = history + [{"role": "assistant", "content": " ".join(words[:count])}]
        yield shown, shown, ""


with gr.Blocks(analytics_enabled=False) as demo:
    history = gr.State([])
    chat = gr.Chatbot(label="Conversation")
    message = gr.Textbox(label="Message")
    gr.Button("Send").click(
        send, [message, history], [chat, history, message], api_name="send"
    )

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=None).launch(
        server_name="127.0.0.1",
        server_port=int(sys.argv[1]),
        ssr_mode=False,
        quiet=True,
    )
