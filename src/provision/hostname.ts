/**
 * Step 3, `hostname`: the guest's hostname becomes the branch slug (`feat/Login_Page` →
 * `feat-login-page`), persisted in `/etc/hostname`, with exactly one `127.0.1.1` line for it in
 * `/etc/hosts` (replaced, never duplicated). Skipped when the branch has no slug.
 *
 * @module
 */
import { branchSlug } from "../lib/naming.ts";
import type { StepDef } from "./context.ts";

const SET_HOSTNAME = [
  "set -eu",
  'h="$1"',
  "printf '%s\\n' \"$h\" > /etc/hostname",
  'hostname "$h" 2>/dev/null || hostnamectl set-hostname "$h" 2>/dev/null ||',
  '  echo "cannot set the running hostname (it applies after a restart)" >&2',
  "if grep -q '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then",
  '  H="$h" awk \'/^127\\.0\\.1\\.1[ \\t]/ { if (!done) print "127.0.1.1\\t" ENVIRON["H"]; done = 1; next } { print }\' /etc/hosts > /etc/hosts.tachikoma',
  "  cat /etc/hosts.tachikoma > /etc/hosts",
  "  rm -f /etc/hosts.tachikoma",
  "else",
  "  printf '127.0.1.1\\t%s\\n' \"$h\" >> /etc/hosts",
  "fi",
].join("\n");

/** Inputs of the hostname step. */
export interface HostnameInputs {
  hostname: string;
}

/** Step 3. */
export const hostnameStep: StepDef<HostnameInputs> = {
  name: "hostname",
  label: "Setting the hostname",
  inputs(host) {
    return Promise.resolve({ hostname: branchSlug(host.ctx.record.branch) });
  },
  async run(host, guest, inputs) {
    if (!inputs.hostname) {
      host.warn(`branch ${JSON.stringify(host.ctx.record.branch)} has no usable hostname; kept it`);
      return;
    }
    const r = await guest.shCheck(SET_HOSTNAME, [inputs.hostname], {
      what: "setting the hostname",
      as: "root",
    });
    if (r.stderr.trim()) host.warn(`${guest.sandbox}: ${r.stderr.trim()}`);
  },
};
