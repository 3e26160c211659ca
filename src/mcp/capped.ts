/**
 * A byte stream kept within a cap: the first half and the last half of the cap are kept (the
 * start of a command's output and its end — where errors usually are), the middle is counted
 * and dropped. Memory stays bounded however much the command prints.
 *
 * @module
 */

/** Collects at most `cap` bytes of a stream: its head and its tail. */
export class CappedOutput {
  readonly cap: number;
  #head: Uint8Array;
  #headLen = 0;
  #tail: Uint8Array;
  /** Ring buffer position of the next tail byte. */
  #tailPos = 0;
  #tailLen = 0;
  #total = 0;

  constructor(cap: number) {
    this.cap = cap;
    this.#head = new Uint8Array(Math.ceil(cap / 2));
    this.#tail = new Uint8Array(Math.floor(cap / 2));
  }

  /** Bytes seen so far. */
  get total(): number {
    return this.#total;
  }

  /** More was seen than is kept. */
  get truncated(): boolean {
    return this.#total > this.cap;
  }

  /** Adds a chunk. */
  push(chunk: Uint8Array): void {
    this.#total += chunk.length;
    let rest = chunk;
    if (this.#headLen < this.#head.length) {
      const n = Math.min(rest.length, this.#head.length - this.#headLen);
      this.#head.set(rest.subarray(0, n), this.#headLen);
      this.#headLen += n;
      rest = rest.subarray(n);
    }
    const size = this.#tail.length;
    if (rest.length === 0 || size === 0) return;
    if (rest.length >= size) rest = rest.subarray(rest.length - size);
    const first = Math.min(rest.length, size - this.#tailPos);
    this.#tail.set(rest.subarray(0, first), this.#tailPos);
    this.#tail.set(rest.subarray(first), 0);
    this.#tailPos = (this.#tailPos + rest.length) % size;
    this.#tailLen = Math.min(size, this.#tailLen + rest.length);
  }

  /** Forgets everything (to refill from a complete result). */
  reset(): void {
    this.#headLen = 0;
    this.#tailPos = 0;
    this.#tailLen = 0;
    this.#total = 0;
  }

  /** The kept text (UTF-8, invalid bytes replaced), with a marker where bytes were dropped. */
  text(): string {
    const decoder = new TextDecoder();
    const head = decoder.decode(this.#head.subarray(0, this.#headLen));
    if (this.#tailLen === 0) return head;
    const size = this.#tail.length;
    const start = (this.#tailPos - this.#tailLen + size) % size;
    const tail = new Uint8Array(this.#tailLen);
    const first = Math.min(this.#tailLen, size - start);
    tail.set(this.#tail.subarray(start, start + first), 0);
    tail.set(this.#tail.subarray(0, this.#tailLen - first), first);
    const dropped = this.#total - this.#headLen - this.#tailLen;
    const marker = dropped > 0 ? `\n[… ${dropped} bytes omitted …]\n` : "";
    return head + marker + decoder.decode(tail);
  }
}
