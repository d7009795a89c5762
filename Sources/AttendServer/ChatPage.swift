// The chat page `attend serve` answers at `/`: one self-contained HTML file (inline CSS and JS, nothing fetched from
// elsewhere) that talks to the same origin's /v1/models and streamed /v1/chat/completions. It keeps the conversation,
// streams each reply into its bubble, can stop it, shows usage, errors, the safety filter's stop, and the sources a
// chunk's `citations` array names, with the answer's [n] markers linked to them. All model text goes in as text nodes.
// Test hooks: #prompt, #send, #stop, #messages, .message.assistant .content/.sources li/.status, body[data-state].

enum ChatPage {
    static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Attend chat</title>
<style>
:root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --user: #e8f0fe; --bot: #f5f5f7; --accent: #0a66c2; --bad: #b3261e; }
@media (prefers-color-scheme: dark) { :root { --bg: #161617; --fg: #f5f5f7; --muted: #a1a1a6; --line: #424245; --user: #1f3350; --bot: #232325; --accent: #6cb4ff; --bad: #ff8a80; } }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; background: var(--bg); color: var(--fg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; }
#model { color: var(--muted); font-size: .9rem; }
#settings { display: flex; gap: 1rem; align-items: center; margin-left: auto; font-size: .9rem; }
#settings input { width: 5.5rem; font: inherit; padding: .15rem .3rem; }
#messages { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: .8rem; }
.message { max-width: 52rem; padding: .6rem .9rem; border-radius: .8rem; }
.message.user { align-self: flex-end; background: var(--user); }
.message.assistant { align-self: flex-start; background: var(--bot); min-width: 12rem; }
.role { font-size: .75rem; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; }
.message.assistant[aria-busy="true"] .content::after { content: "\25CF"; margin-left: .2rem; color: var(--muted); animation: blink 1s infinite; }
@keyframes blink { 50% { opacity: .2; } }
.status { font-size: .8rem; color: var(--muted); margin-top: .3rem; }
.attention-button { margin-top: .3rem; font-size: .8rem; }
.attention img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
.attention figcaption { font-size: .75rem; color: var(--muted); }
.error { color: var(--bad); margin: .4rem 0 0; }
.note { color: var(--muted); font-style: italic; margin: .4rem 0 0; }
.sources { margin-top: .5rem; border-top: 1px solid var(--line); padding-top: .4rem; font-size: .88rem; }
.sources h2 { font-size: .8rem; margin: 0 0 .2rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.sources ol { margin: 0; padding-left: 1.6rem; }
.sources li { margin: .25rem 0; border-radius: .3rem; }
.sources li.flash { outline: 2px solid var(--accent); outline-offset: 2px; }
.src-title { font-weight: 600; }
.src-ref { color: var(--muted); font: .8rem ui-monospace, Menlo, monospace; overflow-wrap: anywhere; }
.sources details summary { cursor: pointer; color: var(--accent); font-size: .8rem; }
.sources blockquote { margin: .3rem 0; padding: .3rem .6rem; border-left: 3px solid var(--line); white-space: pre-wrap; }
a { color: var(--accent); }
a.cite { text-decoration: none; font-weight: 600; }
a.cite:hover, a.cite:focus { text-decoration: underline; }
form { display: flex; gap: .5rem; padding: .7rem 1rem; border-top: 1px solid var(--line); align-items: flex-end; }
#prompt { flex: 1; resize: vertical; min-height: 2.6rem; max-height: 40vh; font: inherit; padding: .45rem .6rem; border: 1px solid var(--line); border-radius: .5rem; background: var(--bg); color: var(--fg); }
button { font: inherit; padding: .45rem 1rem; border-radius: .5rem; border: 1px solid var(--line); background: var(--bot); color: var(--fg); cursor: pointer; }
button#send { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .45; cursor: default; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
</style>
</head>
<body data-state="idle">
<header>
  <h1>Attend chat</h1>
  <span id="model" aria-live="polite">loading model…</span>
  <div id="settings" role="group" aria-label="Sampling settings">
    <label for="temperature">Temperature</label>
    <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7">
    <label for="max-tokens">Max tokens</label>
    <input id="max-tokens" type="number" min="1" step="1" value="512">
    <button id="clear" type="button">New chat</button>
  </div>
</header>
<main id="messages" role="log" aria-label="Conversation"></main>
<form id="composer">
  <label for="prompt" class="visually-hidden">Message</label>
  <textarea id="prompt" rows="2" placeholder="Ask something… (Enter sends, Shift+Enter for a new line)" autofocus></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (selector) => document.querySelector(selector);
const messagesEl = $("#messages"), promptEl = $("#prompt"), sendEl = $("#send"), stopEl = $("#stop");
const history = [];          // the conversation as sent: {role, content}
let controller = null;       // the streaming reply's AbortController, null when idle
let counter = 0, conversation = 0, modelPromise = null;  // conversation: bumped by New chat

// Makes an element; props: class, text (a text node, never HTML) or any attribute. Children: nodes or strings.
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") e.className = value;
    else if (key === "text") e.textContent = value;
    else e.setAttribute(key, value);
  }
  e.append(...children);
  return e;
}

// A server started with API keys wants one: it comes from the address (/#key=KEY), kept in this browser afterwards.
const apiKey = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  try { if (fromHash) localStorage.setItem("attend-api-key", fromHash); return fromHash || localStorage.getItem("attend-api-key"); }
  catch (e) { return fromHash; }
})();
function headers(extra) { return apiKey ? Object.assign({ Authorization: "Bearer " + apiKey }, extra) : extra; }

// The chat model: the first entry of /v1/models, asked for again after a failure.
function getModel() {
  if (!modelPromise) {
    modelPromise = fetch("/v1/models", { headers: headers({}) })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("GET /v1/models: HTTP " + r.status))))
      .then((j) => {
        const id = j && Array.isArray(j.data) && j.data[0] && j.data[0].id;
        if (typeof id !== "string") throw new Error("the server lists no model");
        $("#model").textContent = id;
        return id;
      });
    modelPromise.catch((e) => { $("#model").textContent = "no model: " + e.message; modelPromise = null; });
  }
  return modelPromise;
}

function scrolledToEnd() { return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 48; }
function keepAtEnd(wasAtEnd) { if (wasAtEnd) messagesEl.scrollTop = messagesEl.scrollHeight; }

function addMessage(role) {
  const id = "m" + (++counter), wasAtEnd = scrolledToEnd();
  const content = el("div", { class: "content" });
  const msg = el("article", { class: "message " + role, id, "aria-label": role === "user" ? "You said" : "Assistant" },
                 el("div", { class: "role", "aria-hidden": "true", text: role === "user" ? "You" : "Assistant" }), content);
  messagesEl.append(msg);
  keepAtEnd(wasAtEnd);
  return { id, msg, content };
}

function addReply() {
  const r = addMessage("assistant");
  r.sources = el("section", { class: "sources", "aria-label": "Sources", hidden: "" });
  r.status = el("div", { class: "status" });
  r.msg.append(r.sources, r.status);
  Object.assign(r, { text: "", cited: new Map(), pieces: 0, firstAt: 0, finish: null, usage: null, error: null, aborted: false });
  return r;
}

// The reply's text, with [n] and [n, m] markers that name a listed source turned into links to it.
function renderContent(r) {
  const wasAtEnd = scrolledToEnd(), nodes = [], marker = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0, m;
  while (r.cited.size && (m = marker.exec(r.text))) {
    const numbers = m[1].split(/\s*,\s*/).map(Number);
    if (!numbers.every((n) => r.cited.has(n))) continue;
    nodes.push(r.text.slice(last, m.index));
    const link = (n, label) => el("a", { class: "cite", href: "#" + r.id + "-src-" + n, "aria-label": "source " + n, text: label });
    if (numbers.length === 1) nodes.push(link(numbers[0], m[0]));
    else { nodes.push("["); numbers.forEach((n, i) => nodes.push(...(i ? [", "] : []), link(n, String(n)))); nodes.push("]"); }
    last = marker.lastIndex;
  }
  nodes.push(r.text.slice(last));
  r.content.replaceChildren(...nodes.filter((n) => n !== ""));
  keepAtEnd(wasAtEnd);
}

// citations: [{number, source, anchor?, title?, heading?, text?}] as a numbered list with collapsible passages.
function renderSources(r, citations) {
  r.cited = new Map();
  const list = el("ol");
  for (const c of citations) {
    const n = c && Number(c.number);
    if (!Number.isInteger(n) || r.cited.has(n)) continue;
    r.cited.set(n, c);
    const str = (v) => (typeof v === "string" ? v : v == null ? "" : String(v));
    const source = str(c.source), ref = source + (c.anchor ? "#" + str(c.anchor) : "");
    const heading = [str(c.title), str(c.heading)].filter(Boolean).join(" — ");
    const li = el("li", { id: r.id + "-src-" + n, value: String(n) }, el("span", { class: "src-title", text: heading || ref || "Source " + n }));
    if (ref) {
      const linkable = /^https?:\/\//i.test(source);
      li.append(" ", linkable ? el("a", { class: "src-ref", href: ref, target: "_blank", rel: "noopener noreferrer", text: ref })
                              : el("code", { class: "src-ref", text: ref }));
    }
    if (str(c.text)) li.append(el("details", {}, el("summary", { text: "Passage" }), el("blockquote", { text: str(c.text) })));
    list.append(li);
  }
  r.sources.replaceChildren(el("h2", { text: "Sources" }), list);
  r.sources.hidden = r.cited.size === 0;
}

// One server-sent event's data: a chunk, the usage chunk, or an error.
function handleEvent(r, data) {
  let j;
  try { j = JSON.parse(data); } catch { return; }
  if (!j || typeof j !== "object") return;
  if (j.error) { r.error = (j.error && j.error.message) || String(j.error); return; }
  if (Array.isArray(j.citations)) { renderSources(r, j.citations); renderContent(r); }
  const choice = Array.isArray(j.choices) ? j.choices[0] : null;
  if (choice) {
    const piece = choice.delta && choice.delta.content;
    if (typeof piece === "string" && piece !== "") {
      if (!r.firstAt) r.firstAt = performance.now();
      r.pieces++;
      r.text += piece;
      renderContent(r);
    }
    if (choice.finish_reason) r.finish = choice.finish_reason;
  }
  if (j.usage) r.usage = j.usage;
}

// Reads a text/event-stream body with the stream's reader, calling onData for each event's data until [DONE].
async function readEvents(body, onData) {
  const reader = body.getReader(), decoder = new TextDecoder();
  let buffer = "", data = [];
  const dispatch = () => {
    const d = data.join("\n");
    data = [];
    if (d === "[DONE]") return true;
    onData(d);
    return false;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const lines = buffer.split("\n");
      buffer = done ? "" : lines.pop();
      for (let line of lines) {
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") { if (data.length && dispatch()) return; }
        else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      if (done) { if (data.length) dispatch(); return; }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function describe(r, started, ended) {
  const parts = [];
  const tokens = r.usage && Number.isFinite(r.usage.completion_tokens) ? r.usage.completion_tokens : null;
  const count = tokens ?? r.pieces;
  if (count || !r.error) {
    const seconds = (ended - (r.firstAt || started)) / 1000;
    parts.push((tokens === null ? "~" : "") + count + (count === 1 ? " token" : " tokens"));
    if (count > 1 && seconds > 0) parts.push((count / seconds).toFixed(1) + " tokens/s");
    if (r.firstAt) parts.push("first token after " + ((r.firstAt - started) / 1000).toFixed(2) + " s");
  }
  if (r.aborted) parts.push("stopped");
  else if (r.finish === "length") parts.push("reached the max tokens");
  if (r.error) parts.push("failed");
  return parts.join(" · ");
}

// The attention map of a finished answer, on request: POST /v1/attention renders which earlier tokens each answer
// token attended to (a PNG), shown under the answer.
function addAttentionButton(r, model, messages) {
  const button = el("button", { type: "button", class: "attention-button", text: "Attention map" });
  const figure = el("figure", { class: "attention", hidden: "" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Rendering…";
    try {
      const res = await fetch("/v1/attention", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
                                                  body: JSON.stringify({ model, messages, answer: r.text }) });
      if (!res.ok) {
        let message = "HTTP " + res.status;
        try { const j = await res.json(); if (j.error && j.error.message) message = j.error.message; } catch {}
        throw new Error(message);
      }
      const img = el("img", { alt: "Attention of the answer's tokens (rows) over the conversation's tokens (columns), last layer, head 0" });
      img.src = URL.createObjectURL(await res.blob());
      figure.replaceChildren(img, el("figcaption", { text: "Rows: the answer's tokens. Columns: every token before them. Darker: more attention (last layer, head 0)." }));
      figure.hidden = false;
      button.remove();
    } catch (e) {
      button.disabled = false;
      button.textContent = "Attention map (failed: " + ((e && e.message) || e) + ")";
    }
  });
  r.msg.append(button, figure);
}

async function send() {
  const text = promptEl.value;
  if (!text.trim() || controller) return;
  document.body.dataset.state = "streaming";
  controller = new AbortController();
  sendEl.disabled = true;
  stopEl.disabled = false;
  promptEl.value = "";
  addMessage("user").content.textContent = text;
  history.push({ role: "user", content: text });
  const r = addReply(), started = performance.now(), turn = conversation;
  r.msg.setAttribute("aria-busy", "true");
  r.status.textContent = "waiting for the model…";
  let body = {};
  try {
    body = { model: await getModel(), messages: history.slice(), stream: true, stream_options: { include_usage: true } };
    const temperature = parseFloat($("#temperature").value), maxTokens = parseInt($("#max-tokens").value, 10);
    if (Number.isFinite(temperature)) body.temperature = temperature;
    if (maxTokens > 0) body.max_tokens = maxTokens;
    const res = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!res.ok) {
      let message = "HTTP " + res.status;
      try { const j = await res.json(); if (j.error && j.error.message) message = j.error.message; } catch {}
      throw new Error(message);
    }
    r.status.textContent = "streaming…";
    await readEvents(res.body, (data) => handleEvent(r, data));
  } catch (e) {
    if (e && e.name === "AbortError") r.aborted = true;
    else r.error = (e && e.message) || String(e);
  } finally {
    const ended = performance.now();
    if (r.error) r.msg.insertBefore(el("p", { class: "error", role: "alert", text: "Error: " + r.error }), r.sources);
    if (r.finish === "content_filter") r.msg.insertBefore(el("p", { class: "note", text: "Stopped by the safety filter." }), r.sources);
    // A reply with text stays in the conversation (a stopped one too); a question that got none is not sent again.
    if (turn === conversation) {
      const asked = history.slice();
      if (r.text) history.push({ role: "assistant", content: r.text });
      else history.pop();
      if (r.text && !r.error) addAttentionButton(r, body.model, asked);
    }
    r.status.textContent = describe(r, started, ended);
    r.msg.removeAttribute("aria-busy");
    controller = null;
    sendEl.disabled = false;
    stopEl.disabled = true;
    document.body.dataset.state = "idle";
    promptEl.focus();
  }
}

$("#composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
promptEl.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
stopEl.addEventListener("click", () => { if (controller) controller.abort(); });
$("#clear").addEventListener("click", () => {
  if (controller) controller.abort();
  conversation++;
  history.length = 0;
  messagesEl.replaceChildren();
  promptEl.focus();
});
// A [n] link opens its source's passage and marks it for a moment.
messagesEl.addEventListener("click", (e) => {
  const link = e.target.closest && e.target.closest("a.cite");
  const li = link && document.getElementById(link.getAttribute("href").slice(1));
  if (!li) return;
  e.preventDefault();
  const details = li.querySelector("details");
  if (details) details.open = true;
  li.scrollIntoView({ block: "nearest", behavior: "smooth" });
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 1500);
});
getModel().catch(() => {});
</script>
</body>
</html>
"""#
}
