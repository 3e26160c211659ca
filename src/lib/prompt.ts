/**
 * Questions on the terminal: the question on stderr (stdout carries results only), one line of
 * answer from stdin. Only for interactive runs: callers check {@link canPrompt} first.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** True when a question can be asked: stdin and stderr are terminals. */
export function canPrompt(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
}

/** Where a question is written and its answer read (the terminal by default; tests swap it). */
export interface PromptIo {
  write(text: string): Promise<void>;
  read(buffer: Uint8Array): Promise<number | null>;
}

/** The process's terminal: stderr and stdin. */
export const terminalIo: PromptIo = {
  write: async (text) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await Deno.stderr.write(bytes.subarray(at));
  },
  read: (buffer) => Deno.stdin.read(buffer),
};

/**
 * Writes `question` and returns the line typed (without its line ending), or null at end of
 * input before any newline.
 */
export async function readLine(
  question: string,
  io: PromptIo = terminalIo,
): Promise<string | null> {
  await io.write(question);
  const buffer = new Uint8Array(1024);
  let answer = "";
  for (;;) {
    const n = await io.read(buffer);
    if (n === null) return answer === "" ? null : answer.replace(/\r$/, "");
    answer += decoder.decode(buffer.subarray(0, n), { stream: true });
    const end = answer.indexOf("\n");
    if (end >= 0) return answer.slice(0, end).replace(/\r$/, "");
  }
}

/** Asks a yes/no question; only `y`/`yes` (any case) is yes, end of input is no. */
export async function confirm(question: string, io: PromptIo = terminalIo): Promise<boolean> {
  const answer = await readLine(question, io);
  return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
}
