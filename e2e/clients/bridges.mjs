// Gradio's JavaScript client (@gradio/client, pinned in package.json) against a real
// Keepsake server. Run by e2e/tests/clients.rs: node bridges.mjs http://127.0.0.1:PORT,
// with KEEPSAKE_JS_CLIENTS naming the directory scripts/install.sh installed it in.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const entry = join(process.env.KEEPSAKE_JS_CLIENTS, "node_modules/@gradio/client/dist/index.js");
const { Client } = await import(pathToFileURL(entry).href);
const cart = process.argv[2].replace(/\/$/, "") + "/apps/shopping-cart/";

function check(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
  console.log(`ok: ${what}: ${JSON.stringify(got)}`);
}

const first = await Client.connect(cart);
check("a Client adds to its cart", (await first.predict("/add_items", { items: ["Milk"] })).data, [1]);
check("the same Client adds again: one cart", (await first.predict("/add_items", { items: ["Water"] })).data, [2]);
const second = await Client.connect(cart);
check("a second Client has its own cart", (await second.predict("/add_items", { items: ["Milk"] })).data, [1]);
let message = null;
try {
  await first.predict("/add_items", { items: ["Nope"] });
} catch (error) {
  message = error.message;
}
check("bad input is an error with the message", message, 'input 0 (Items): "Nope" is not one of the choices');
check("and changes nothing", (await first.predict("/add_items", { items: ["Milk"] })).data, [3]);
const api = await first.view_api();
check("view_api lists the endpoint", Object.keys(api.named_endpoints), ["/add_items"]);
// A streaming endpoint: submit() yields each partial output as it comes, then the
// result (the reply grows word by word; the last data is the whole reply).
const chat = await Client.connect(process.argv[2].replace(/\/$/, "") + "/apps/chat/");
const replies = [];
for await (const event of chat.submit("/send", { message: "hello there" })) {
  if (event.type === "data") {
    const last = event.data[0][event.data[0].length - 1];
    if (last.role === "assistant") replies.push(last.content);
  }
  if (event.type === "status" && event.stage === "complete") break;
}
check("several partial replies seen while it streamed", replies.length >= 3, true);
check("each one a beginning of the next", replies.every((reply, i) => i === 0 || reply.startsWith(replies[i - 1])), true);
check("the last is the whole reply", replies[replies.length - 1].startsWith("You wrote 2 words"), true);
console.log(JSON.stringify({ all: "passed" }));
process.exit(0);
