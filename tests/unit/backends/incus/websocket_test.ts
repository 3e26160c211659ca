/**
 * An exec file descriptor's channel (`src/backends/incus/websocket.ts`) against a stand-in
 * socket: data before Incus' end-of-stream marker is all delivered, settling after the marker
 * starts no timer (the first timer of a process is costly), and without the marker settling
 * waits for the close or the grace time.
 */
import { assertEquals } from "@std/assert";
import { FdChannel } from "../../../../src/backends/incus/websocket.ts";
import { FakeClock } from "../../../testing/fake_clock.ts";

/** Just what FdChannel uses of a WebSocket. */
class StandInSocket extends EventTarget {
  readyState: number = WebSocket.OPEN;
  closes = 0;
  close(): void {
    this.closes++;
    this.readyState = WebSocket.CLOSED;
  }
  message(data: ArrayBuffer | string): void {
    this.dispatchEvent(new MessageEvent("message", { data }));
  }
  closedByPeer(): void {
    this.readyState = WebSocket.CLOSED;
    this.dispatchEvent(new Event("close"));
  }
}

function channel(ws: StandInSocket, onData: (c: Uint8Array) => void): FdChannel {
  return new FdChannel(ws as unknown as WebSocket, onData);
}

Deno.test("websocket: after the end marker, settle takes no timer and the data is whole", async () => {
  const ws = new StandInSocket();
  const got: number[] = [];
  const ch = channel(ws, (c) => got.push(...c));
  ws.message(new Uint8Array([1, 2]).buffer);
  ws.message(new ArrayBuffer(0)); // empty binary: nothing
  ws.message(new Uint8Array([3]).buffer);
  ws.message(""); // end of stream
  const clock = new FakeClock();
  await ch.settle(5_000, clock);
  assertEquals(got, [1, 2, 3]);
  assertEquals(clock.sleeps, []);
  assertEquals(ws.closes, 1, "closed from our side");
});

Deno.test("websocket: without the marker, settle waits for the marker, the close or the grace time", async () => {
  for (const ending of ["marker", "close", "grace"] as const) {
    const ws = new StandInSocket();
    const ch = channel(ws, () => {});
    const clock = new FakeClock();
    let settled = false;
    const settling = ch.settle(5_000, clock).then(() => settled = true);
    await clock.sleeping(1);
    assertEquals(settled, false, ending);
    if (ending === "marker") ws.message("");
    else if (ending === "close") ws.closedByPeer();
    else clock.advance(5_000);
    await settling;
    assertEquals(clock.pending, 0, `${ending}: the grace timer is cancelled`);
  }
});
