// The role-sync worker's entry: the shared one (build/entry.mjs, the fetch and scheduled handlers) plus
// the Durable Object class it hosts, `DiscordLimiter`, the Discord rate limiter shared with the api worker
// (src/limiter.rs). The class wraps the wasm-bindgen export of the Rust `#[durable_object]`: the runtime
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
