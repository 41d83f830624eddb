// The ES-module entry wrangler bundles for every Tollgate worker. `cargo xtask` copies it next to the
// wasm-bindgen output (build/index.js) of each worker. It forwards each event, with this.env and this.ctx,
// to the matching export of the Rust worker (#[event(fetch)], #[event(scheduled)], #[event(queue)]).
import { WorkerEntrypoint } from "cloudflare:workers";
import * as generated from "./index.js";

// Copied into a plain object so that a handler a worker does not define is simply absent.
const worker = { ...generated };

export default class TollgateWorker extends WorkerEntrypoint {
  fetch(request) {
    return worker.fetch(request, this.env, this.ctx);
  }

  scheduled(event) {
    return worker.scheduled(event, this.env, this.ctx);
  }

  queue(batch) {
    if (typeof worker.queue !== "function") {
      throw new Error("this worker has no queue handler");
    }
    return worker.queue(batch, this.env, this.ctx);
  }
}
