"""The state guide's shopping cart in Gradio, for the side-by-side benchmark
(scripts/bench). The app is the guide's, with `api_name="add_items"` so that both
servers answer the same routes; the launch is Gradio's fastest configuration for it:
no concurrency limit on the event, the queue-free `/run` route open
(`api_open=True`), analytics off, no server-side rendering.

Usage: python cart.py PORT
"""

import os
import sys

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402

with gr.Blocks(analytics_enabled=False) as demo:
    cart = gr.State([])
    items_to_add = gr.CheckboxGroup(["Cereal", "Milk", "Orange Juice", "Water"])

    def add_items(new_items, previous_cart):
        cart = previous_cart + new_items
        return cart

    gr.Button("Add Items").click(
        add_items, [items_to_add, cart], cart, api_name="add_items"
    )

    cart_size = gr.Number(label="Cart Size")
    cart.change(lambda cart: len(cart), cart, cart_size)

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=None, api_open=True).launch(
        server_name="127.0.0.1",
        server_port=int(sys.argv[1]),
        ssr_mode=False,
        quiet=True,
    )
