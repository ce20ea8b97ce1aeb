// The counter and chat examples (examples/counter, examples/chat) for Cloudflare's workerd:
// the same routes, the same storage and the same messages, so bench/compare_workerd/run.py
// can send both runtimes the identical load.
//
//   POST /counter/{name}/increment  -> {"name", "value"}   (RPC: Counter.increment())
//   GET  /counter/{name}            -> {"name", "value"}   (RPC: Counter.value())
//   GET|POST /counter/{name}/fetch  -> the same through Counter.fetch()
//   GET  /counter/{name}/id         -> {"name", "id"}
//   GET  /                          -> the chat page (examples/chat/static/index.html)
//   GET  /room/{room}/ws?name=NAME  -> a hibernatable WebSocket in ChatRoom {room}
//   GET  /room/{room}/history       -> the room's last 50 messages (RPC: ChatRoom.recent())
import { DurableObject } from "cloudflare:workers";
import page from "index.html";

const HISTORY = 50;
const MAX_NAME = 32;
const MAX_TEXT = 2000;

export class Counter extends DurableObject {
  async increment(by = 1) {
    // As examples/counter/counter.py: storage.get("n", 0) + by, then put.
    const n = ((await this.ctx.storage.get("n")) ?? 0) + by;
    await this.ctx.storage.put("n", n);
    return n;
  }

  async value() {
    return (await this.ctx.storage.get("n")) ?? 0;
  }

  async fetch(request) {
    const name = new URL(request.url).searchParams.get("_name");
    if (request.method === "POST") {
      const by = parseInt(new URL(request.url).searchParams.get("by") ?? "1", 10);
      return Response.json({ name, value: await this.increment(by) });
    }
    return Response.json({ name, value: await this.value() });
  }
}

export class ChatRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS messages (" +
        " id INTEGER PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL)",
    );
  }

  async fetch(request) {
    const name = (new URL(request.url).searchParams.get("name") ?? "").trim();
    if (!name || name.length > MAX_NAME) {
      return Response.json({ error: `a name of 1 to ${MAX_NAME} characters` }, { status: 400 });
    }
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair);
    this.ctx.acceptWebSocket(server, ["chat"]);
    server.serializeAttachment({ name });
    server.send(JSON.stringify({ type: "history", messages: this.history() }));
    this.broadcast({ type: "join", name, at: Date.now() / 1000 }, server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    if (typeof message !== "string") return;
    let text;
    try {
      const body = JSON.parse(message);
      if (body === null || typeof body !== "object" || !("text" in body)) throw new TypeError();
      text = String(body.text).slice(0, MAX_TEXT);
    } catch {
      ws.send(JSON.stringify({ type: "error", error: 'send {"text": "..."}' }));
      return;
    }
    const name = (ws.deserializeAttachment() ?? {}).name ?? "?";
    const at = Date.now() / 1000;
    this.ctx.storage.sql.exec("INSERT INTO messages (name, text, at) VALUES (?, ?, ?)", name, text, at);
    this.ctx.storage.sql.exec(
      "DELETE FROM messages WHERE id <= (SELECT max(id) FROM messages) - ?",
      HISTORY,
    );
    // As in the seed article and examples/chat/room.py: to every other session of the room.
    this.broadcast({ type: "message", name, text, at }, ws);
  }

  async webSocketClose(ws, code, reason, wasClean) {
    // Answer the client's Close frame (raydo's gateway, uvicorn, does this by itself); without
    // it this workerd leaves the client waiting for its close timeout.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    const name = (ws.deserializeAttachment() ?? {}).name ?? "?";
    this.broadcast({ type: "leave", name, at: Date.now() / 1000 }, ws);
  }

  async recent() {
    return this.history();
  }

  history() {
    const rows = this.ctx.storage.sql
      .exec("SELECT name, text, at FROM messages ORDER BY id DESC LIMIT ?", HISTORY)
      .toArray();
    return rows.reverse();
  }

  broadcast(event, exclude) {
    const text = JSON.stringify(event);
    for (const ws of this.ctx.getWebSockets()) {
      if (ws !== exclude) {
        try {
          ws.send(text);
        } catch {
          // A socket closing while we broadcast: the close event will follow.
        }
      }
    }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").map(decodeURIComponent);
    // ["", "counter", name, action?]
    if (parts[1] === "counter" && parts.length >= 3 && parts[2] !== "") {
      const name = parts[2];
      const action = parts[3];
      if (parts.length > 4) return notFound();
      if (action === "increment" && request.method === "POST") {
        return Response.json({ name, value: await env.COUNTER.getByName(name).increment() });
      }
      if (action === "fetch" && (request.method === "GET" || request.method === "POST")) {
        const forwarded = new URL(request.url);
        forwarded.searchParams.set("_name", name);
        return env.COUNTER.getByName(name).fetch(new Request(forwarded, request));
      }
      if (action === "id" && request.method === "GET") {
        return Response.json({ name, id: env.COUNTER.idFromName(name).toString() });
      }
      if (action === undefined && request.method === "GET") {
        return Response.json({ name, value: await env.COUNTER.getByName(name).value() });
      }
      return notFound();
    }
    if (parts[1] === "room" && parts.length === 4 && parts[2] !== "") {
      const room = env.ROOM.getByName(parts[2]);
      if (parts[3] === "ws") {
        if (request.headers.get("Upgrade") !== "websocket") {
          return new Response("expected a WebSocket upgrade", { status: 426 });
        }
        return room.fetch(request);
      }
      if (parts[3] === "history" && request.method === "GET") {
        return Response.json(await room.recent());
      }
      return notFound();
    }
    if (url.pathname === "/" && request.method === "GET") {
      return new Response(page, { headers: { "content-type": "text/html" } });
    }
    return notFound();
  },
};

function notFound() {
  return new Response("Not Found", { status: 404 });
}
