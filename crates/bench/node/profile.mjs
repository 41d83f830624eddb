// Records a CPU profile of a worker through workerd's inspector (Chrome DevTools Protocol over WebSocket,
// served by wrangler's inspector proxy).
// usage: node profile.mjs <inspector port> <output .cpuprofile> <sampling interval µs>
// Prints "started" once the profiler runs, stops it when a line arrives on stdin, writes the profile,
// prints "saved". `cargo xtask bench --profile` sends the deliveries in between.
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const [port, output, intervalArg] = process.argv.slice(2);
const interval = Number(intervalArg);
if (!port || !output || !(interval > 0)) {
  console.error("usage: node profile.mjs <inspector port> <output .cpuprofile> <sampling interval µs>");
  process.exit(2);
}
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const target = targets.find((t) => t.webSocketDebuggerUrl);
if (!target) {
  console.error(`no inspectable target on port ${port}: ${JSON.stringify(targets)}`);
  process.exit(1);
}
// wrangler's inspector proxy accepts only local origins (a client with a User-Agent must send one).
const socket = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: "http://127.0.0.1" } });
await new Promise((resolve, reject) => {
  socket.addEventListener("open", resolve, { once: true });
  socket.addEventListener("error", () => reject(new Error("the inspector's WebSocket did not open")), { once: true });
});
let nextId = 1;
const pending = new Map();
socket.addEventListener("message", (message) => {
  const reply = JSON.parse(message.data);
  const waiting = pending.get(reply.id);
  if (!waiting) return;
  pending.delete(reply.id);
  if (reply.error) waiting.reject(new Error(`${JSON.stringify(reply.error)}`));
  else waiting.resolve(reply.result);
});
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ id, method, params }));
  });

await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval });
await send("Profiler.start");
console.log("started");
const lines = createInterface({ input: process.stdin });
for await (const _line of lines) break;
const { profile } = await send("Profiler.stop");
writeFileSync(output, JSON.stringify(profile));
console.log("saved");
socket.close();
process.exit(0);
