/**
 * Managed blocks in text files that belong to someone else (`~/.ssh/config` on the host,
 * `~/.profile` in the guest): a region between a BEGIN and an END marker line that tachikoma
 * owns and rewrites, with every byte outside it left exactly as it was — line endings (LF or
 * CRLF), a missing final newline and bytes that are not valid UTF-8 included.
 *
 * Text is handled as "binary strings" (one char per byte, see {@link bytesToBinary}) so nothing
 * is ever decoded and re-encoded; markers are ASCII and match after trimming spaces, tabs and
 * CR (tachikoma matched them trimmed too).
 *
 * @module
 */
import { RuntimeError } from "../lib/errors.ts";

/** The two marker lines of a block. */
export interface BlockMarkers {
  begin: string;
  end: string;
}

/** A block found in a text: `[start, end)` covers the BEGIN line through the END line's EOL. */
export interface BlockRegion {
  start: number;
  end: number;
  /** True when the END line had a line terminator. */
  terminated: boolean;
}

/** Where a new block goes when the text has none. */
export type BlockPlacement = "top" | "bottom";

/** A file has a BEGIN marker without END (or the reverse): nothing is rewritten. */
export class MarkedBlockError extends RuntimeError {
  constructor(message: string, hint: string) {
    super("marked_block", message, { hint });
  }
}

/** One char per byte (latin1), so any byte sequence round-trips through string operations. */
export function bytesToBinary(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return out;
}

/** Inverse of {@link bytesToBinary}. Every char must be < 256. */
export function binaryToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** UTF-8 text as a binary string (for block bodies built from normal strings). */
export function utf8ToBinary(text: string): string {
  return bytesToBinary(new TextEncoder().encode(text));
}

/** The line terminator a text uses: CRLF when its first line ends with CRLF, else LF. */
export function detectEol(text: string): "\n" | "\r\n" {
  const nl = text.indexOf("\n");
  return nl > 0 && text[nl - 1] === "\r" ? "\r\n" : "\n";
}

function trimLine(line: string): string {
  return line.replace(/^[ \t\r]+|[ \t\r]+$/g, "");
}

/**
 * Every block in `text`, in order. Throws {@link MarkedBlockError} (naming `label` and the line)
 * for a BEGIN without END, an END without BEGIN or a BEGIN inside a block.
 */
export function findBlocks(text: string, markers: BlockMarkers, label: string): BlockRegion[] {
  const regions: BlockRegion[] = [];
  let pos = 0;
  let lineNo = 0;
  let open: { start: number; line: number } | null = null;
  const hint = `fix ${label} by hand: keep one '${markers.begin}' … '${markers.end}' pair`;
  while (pos < text.length) {
    lineNo++;
    const nl = text.indexOf("\n", pos);
    const lineEnd = nl === -1 ? text.length : nl;
    const next = nl === -1 ? text.length : nl + 1;
    const line = trimLine(text.slice(pos, lineEnd));
    if (line === markers.begin) {
      if (open) {
        throw new MarkedBlockError(
          `${label}: line ${lineNo}: '${markers.begin}' inside the block opened on line ${open.line}`,
          hint,
        );
      }
      open = { start: pos, line: lineNo };
    } else if (line === markers.end) {
      if (!open) {
        throw new MarkedBlockError(
          `${label}: line ${lineNo}: '${markers.end}' without a '${markers.begin}' before it`,
          hint,
        );
      }
      regions.push({ start: open.start, end: next, terminated: nl !== -1 });
      open = null;
    }
    pos = next;
  }
  if (open) {
    throw new MarkedBlockError(
      `${label}: line ${open.line}: '${markers.begin}' has no matching '${markers.end}'`,
      hint,
    );
  }
  return regions;
}

/**
 * Returns `text` with its managed block replaced by `body` (lines between the markers, without
 * terminators), or removed when `body` is null. The first existing block is replaced in place
 * and any later duplicates are dropped. Without a block, a new one is put at the `placement`
 * end. Bytes outside the block never change; the block uses the text's own line terminator.
 * Removing a block that was inserted at the top gives back the original text byte for byte.
 */
export function applyBlock(
  text: string,
  body: string[] | null,
  options: { markers: BlockMarkers; placement: BlockPlacement; label: string },
): string {
  const { markers } = options;
  const regions = findBlocks(text, markers, options.label);
  const eol = detectEol(text);
  const render = (terminated: boolean) =>
    body === null ? "" : [markers.begin, ...body, markers.end].join(eol) + (terminated ? eol : "");
  if (regions.length > 0) {
    let out = "";
    let pos = 0;
    regions.forEach((region, i) => {
      out += text.slice(pos, region.start);
      if (i === 0) out += render(region.terminated);
      pos = region.end;
    });
    return out + text.slice(pos);
  }
  if (body === null) return text;
  if (options.placement === "top") return render(true) + text;
  if (text === "" || text.endsWith("\n")) return text + render(true);
  return text + eol + render(true);
}

/** The lines between the markers of the first block, or null when there is none. */
export function readBlock(text: string, markers: BlockMarkers, label: string): string[] | null {
  const [region] = findBlocks(text, markers, label);
  if (!region) return null;
  const inner = text.slice(region.start, region.end).split("\n").map((l) => l.replace(/\r$/, ""));
  // drop BEGIN, END and the empty piece after a terminated END
  if (inner[inner.length - 1] === "") inner.pop();
  return inner.slice(1, -1);
}
