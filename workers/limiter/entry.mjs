// The limiter worker's entry: the shared one (build/entry.mjs, its fetch handler) plus the Durable Object
// class it hosts, `DiscordLimiter`, the Discord rate limiter the other workers bind (src/limiter.rs). The class wraps the wasm-bindgen export of the Rust `#[durable_object]`: the runtime
// needs a class extending DurableObject, exported from the entry module under the name wrangler.toml binds.
import { DurableObject } from "cloudflare:workers";
import * as generated from "./build/index.js";

export { default } from "./build/entry.mjs";

export class DiscordLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.inner = new generated.DiscordLimiter(ctx, env);
  }

  fetch(request) {
    return this.inner.fetch(request);
  }
}
