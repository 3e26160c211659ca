/**
 * HostKeyGate: ssh2's host-key callback is answered before it returns (never later, see
 * handshake_test.ts for why), a first-seen key is pinned only by commit(), and a refused key is
 * explained without touching the file.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { HostKeyGate } from "../../../src/ssh/host_key_gate.ts";
import {
  HostKeyMismatchError,
  KnownHosts,
  parsePublicKeyLine,
} from "../../../src/ssh/known_hosts.ts";
import { fromBase64 } from "../../../src/lib/shell.ts";

async function hostKeyBlob(dir: string, name: string): Promise<Uint8Array> {
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", `${dir}/${name}`],
  }).output();
  assert(out.success);
  return fromBase64(parsePublicKeyLine(await Deno.readTextFile(`${dir}/${name}.pub`)).key);
}

/** Calls the verifier; returns the verdict it gave before returning (undefined: none yet). */
function answer(gate: HostKeyGate, blob: Uint8Array): boolean | undefined {
  let verdict: boolean | undefined;
  gate.verifier(blob, (ok) => verdict = ok);
  return verdict;
}

Deno.test("HostKeyGate: answers at once; pins on commit; refuses a changed key, file untouched", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new KnownHosts(`${dir}/known_hosts`);
    const first = await hostKeyBlob(dir, "a");
    const other = await hostKeyBlob(dir, "b");

    const gate = await HostKeyGate.open(store, "sb");
    assertEquals(answer(gate, first), true, "first use: accepted inside the callback");
    assertEquals(await store.list("sb"), [], "nothing pinned before the handshake completed");
    await gate.commit();
    assertEquals((await store.list("sb")).length, 1);

    const again = await HostKeyGate.open(store, "sb");
    assertEquals(answer(again, first), true);
    assertEquals(again.refused, false);

    const changed = await HostKeyGate.open(store, "sb");
    const before = await Deno.readTextFile(`${dir}/known_hosts`);
    assertEquals(answer(changed, other), false, "a changed key is refused inside the callback");
    assert(changed.refused);
    assertInstanceOf(await changed.refusal(), HostKeyMismatchError);
    assertEquals(await Deno.readTextFile(`${dir}/known_hosts`), before);

    // Recreated after the pin (state created_at newer): accepted, the pin replaced on commit.
    const recreated = await HostKeyGate.open(
      store,
      "sb",
      new Date(Date.now() + 60_000).toISOString(),
    );
    assertEquals(answer(recreated, other), true);
    await recreated.commit();
    assertEquals(answer(await HostKeyGate.open(store, "sb"), first), false);

    const garbage = await HostKeyGate.open(store, "sb");
    assertEquals(answer(garbage, new Uint8Array([0, 0, 0, 99, 1])), false);
    assert((await garbage.refusal()).message.includes("cannot verify the SSH host key"));
    await assertRejects(() => HostKeyGate.open(store, "sb").then((g) => g.commit()));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
