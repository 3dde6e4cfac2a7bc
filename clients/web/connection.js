// The WebSocket to the runtime: binary data messages in, JSON control
// commands out with an `id` each, replies matched back to their promises.
// When the socket closes it reconnects by itself, waiting a little longer
// after each failed try (up to RETRY_MAX_MS). A runtime started with
// --token needs it on every command: pass it (the page takes ?token=...).

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

export class Connection {
  // handlers: onState(state), onData(ArrayBuffer), onStrayReply(reply)
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.nextId = 1;
    this.pending = new Map();       // id -> {resolve, reject}
    this.retryMs = RETRY_MIN_MS;
    this.stopped = false;
  }

  connect() {
    this.handlers.onState("connecting");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.retryMs = RETRY_MIN_MS;
      this.handlers.onState("open");
    };
    ws.onmessage = (event) => {
      if (typeof event.data === "string") this.reply(JSON.parse(event.data));
      else this.handlers.onData(event.data);
    };
    ws.onclose = () => {
      this.socket = null;
      for (const { reject } of this.pending.values()) reject(new Error("the connection closed"));
      this.pending.clear();
      if (this.stopped) return;
      this.handlers.onState("closed");
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(2 * this.retryMs, RETRY_MAX_MS);
    };
    this.socket = ws;
  }

  // Closes the socket for good (no reconnecting).
  stop() {
    this.stopped = true;
    if (this.socket) this.socket.close();
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  // Sends {cmd, ...args, id, token?}; resolves with the reply (ok or not).
  command(cmd, args = {}) {
    if (!this.open) return Promise.reject(new Error(`${cmd}: not connected`));
    const id = this.nextId++;
    const msg = this.token ? { cmd, ...args, id, token: this.token } : { cmd, ...args, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify(msg));
    });
  }

  reply(msg) {
    const waiter = this.pending.get(msg.id);
    if (!waiter) {
      this.handlers.onStrayReply(msg);
      return;
    }
    this.pending.delete(msg.id);
    waiter.resolve(msg);
  }
}
