"""The clients people already use, against a real Keepsake server.

Run by e2e/tests/clients.rs with the pinned virtual environment of
e2e/clients/requirements.txt: python bridges.py http://127.0.0.1:PORT

gradio_client (Gradio's own Python client) and the MCP Python SDK call the demo
apps; every check prints a line, and the first that fails raises (non-zero exit).
"""

import asyncio
import json
import os
import sys

# No telemetry from the client on this closed network.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

BASE = sys.argv[1].rstrip("/")
CART = f"{BASE}/apps/shopping-cart/"
COUNTER = f"{BASE}/apps/visitor-counter/"
CHAT = f"{BASE}/apps/chat/"


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
    print(f"ok: {what}: {got!r}")


def client(url):
    return Client(url, verbose=False, download_files=False)


def app_error(call):
    """The message of the AppError `call` raises."""
    try:
        got = call()
    except AppError as error:
        return error.message
    raise AssertionError(f"expected an AppError, got the value {got!r}")


def gradio_bridges():
    first = client(CART)
    api = first.view_api(print_info=False, return_format="dict")
    endpoint = api["named_endpoints"]["/add_items"]
    check("view_api lists /add_items' parameter", [p["parameter_name"] for p in endpoint["parameters"]], ["items"])
    check("view_api lists what it returns", [r["label"] for r in endpoint["returns"]], ["Cart Size"])

    check("a Client adds to its cart", first.predict(["Milk"], api_name="/add_items"), 1.0)
    check("the same Client adds again: one cart", first.predict(["Water"], api_name="/add_items"), 2.0)
    second = client(CART)
    check("a second Client has its own cart", second.predict(["Milk"], api_name="/add_items"), 1.0)
    check("submit(...).result() runs in the same session", first.submit(["Cereal"], api_name="/add_items").result(), 3.0)
    check("keyword arguments", first.predict(items=["Milk"], api_name="/add_items"), 4.0)

    # Bad input: a clear error each, raised as AppError, and nothing changes.
    not_a_choice = app_error(lambda: first.predict(["Nope"], api_name="/add_items"))
    check("a value not among the choices is refused", "not one of the choices" in not_a_choice, True)
    wrong_type = app_error(lambda: first.predict(5, api_name="/add_items"))
    check("a value of the wrong type is refused", "Items" in wrong_type, True)
    check("the refused calls changed nothing", first.predict(["Milk"], api_name="/add_items"), 5.0)

    # A handler's own error reaches the client with its message.
    full = client(CART)
    for n in range(1, 26):
        size = full.predict(["Cereal", "Milk", "Orange Juice", "Water"], api_name="/add_items")
    check("a cart filled to its limit", size, 100.0)
    message = app_error(lambda: full.predict(["Milk"], api_name="/add_items"))
    check("the handler's error is the exception's message", message, "The cart holds at most 100 items; it has 100.")

    counter = client(COUNTER)
    before = int(counter.predict(api_name="/visit"))
    check("the visitor counter increments", int(counter.predict(api_name="/visit")), before + 1)
    check("for every client (global state)", int(client(COUNTER).predict(api_name="/visit")), before + 2)

    # Gradio's two-step calls, as its curl examples make them.
    started = httpx.post(f"{CART}gradio_api/call/add_items", json={"data": [["Water"]]})
    started.raise_for_status()
    event_id = started.json()["event_id"]
    answer = httpx.get(f"{CART}gradio_api/call/add_items/{event_id}").text
    check("a two-step call answers its outputs", answer.splitlines()[:2], ["event: complete", "data: [1.0]"])
    return not_a_choice


def gradio_streams():
    """submit() iterates a streaming endpoint's partial outputs as they come, in
    order, then gives its result."""
    job = client(CHAT).submit("hello there", api_name="/send")
    seen = [output for output in job]
    conversation, _ = job.result()
    final = conversation[-1]["content"]
    check("the streamed reply", final.startswith("You wrote 2 words"), True)
    replies = [c[-1]["content"] for c, _ in seen if c[-1]["role"] == "assistant"]
    check("several partial replies seen while it streamed", len(replies) >= 3, True)
    check("each one a beginning of the next", all(b.startswith(a) for a, b in zip(replies, replies[1:])), True)
    check("the last one seen is the reply", replies[-1], final)
    check("the first output is the user's message alone", seen[0][0][-1], {"role": "user", "content": "hello there"})


async def mcp_session(app, calls):
    """Runs `calls` (tool, arguments) in one MCP session; their results."""
    results = []
    async with streamable_http_client(f"{BASE}/apps/{app}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                text = [c.text for c in result.content]
                results.append((result.is_error, result.structured_content, text))
    return tools, results


async def mcp_bridges(gradio_message):
    tools, results = await mcp_session(
        "shopping-cart",
        [
            ("add_items", {"items": ["Milk"]}),
            ("add_items", {"items": ["Water"]}),
            ("add_items", {"items": ["Nope"]}),
            ("add_items", {"bogus": 1}),
            ("add_items", {"items": "Milk"}),
            ("add_items", {"items": ["Cereal"]}),
            ("add_items", {}),
        ],
    )
    tool = tools["add_items"]
    check("MCP lists add_items with its description", tool.description, "Adds the chosen items to this session's cart; returns the cart's size.")
    schema = tool.input_schema
    check("its input schema", (schema["type"], schema["properties"]["items"]["type"], schema["properties"]["items"]["items"]["enum"]),
          ("object", "array", ["Cereal", "Milk", "Orange Juice", "Water"]))
    check("its output schema", list(tool.output_schema["properties"]), ["cart_size"])
    check("first call in an MCP session", results[0][:2], (False, {"cart_size": 1.0}))
    check("second call in the same MCP session: one cart", results[1][:2], (False, {"cart_size": 2.0}))
    check("a value not among the choices is a tool error", results[2][0], True)
    check("worded as the Gradio bridge words it", results[2][2], [gradio_message])
    check("an unknown parameter is a tool error", (results[3][0], "no parameter" in results[3][2][0]), (True, True))
    check("a value of the wrong type is a tool error", results[4][0], True)
    check("the refused calls changed nothing", results[5][:2], (False, {"cart_size": 3.0}))
    # No items: the cart is unchanged, so its .change listener does not run and the
    # size is not among the outputs (the SDK checks the result against the schema).
    check("a call that sets no output", results[6][:2], (False, {}))

    _, other = await mcp_session("shopping-cart", [("add_items", {"items": ["Milk"]})])
    check("another MCP session has its own cart", other[0][:2], (False, {"cart_size": 1.0}))

    _, visits = await mcp_session("visitor-counter", [("visit", {}), ("visit", {})])
    first, second = (int(v[1]["total_visitors"]) for v in visits)
    check("the visitor counter increments over MCP", second, first + 1)


async def mcp_progress():
    """A streaming tool called with a progress callback: each partial reply arrives as
    a progress notification, in order, then the result."""
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, json.loads(message)))

    async with streamable_http_client(f"{BASE}/apps/chat/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("send", {"message": "hello there"}, progress_callback=on_progress)
    check("the streaming tool succeeds", result.is_error, False)
    final = result.structured_content["conversation"][-1]["content"]
    check("its reply", final.startswith("You wrote 2 words"), True)
    check("progress for each partial, counted up", [p for p, _ in seen], [float(n) for n in range(1, len(seen) + 1)])
    replies = [m["conversation"][-1]["content"] for _, m in seen if m["conversation"][-1]["role"] == "assistant"]
    check("several partial replies before the result", len(replies) >= 3, True)
    check("each one a beginning of the next", all(b.startswith(a) for a, b in zip(replies, replies[1:])), True)
    check("the last one is the reply", replies[-1], final)
    check("the first partial is the user's message alone", seen[0][1]["conversation"][-1]["role"], "user")


def main():
    message = gradio_bridges()
    gradio_streams()
    asyncio.run(mcp_bridges(message))
    asyncio.run(mcp_progress())
    print(json.dumps({"all": "passed"}))


if __name__ == "__main__":
    main()
