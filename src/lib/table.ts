/**
 * Human tables: aligned columns, `-` for empty cells, no trailing spaces.
 *
 * @module
 */

/** A column of a human table. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | null | undefined;
}

/** Renders rows as an aligned table; empty cells print as `-`. No trailing spaces. */
export function renderTable<T>(columns: Column<T>[], rows: T[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => {
      const v = c.value(row);
      return v === null || v === undefined || v === "" ? "-" : String(v);
    })
  );
  const widths = columns.map((c, i) =>
    Math.max(displayWidth(c.header), ...cells.map((r) => displayWidth(r[i])))
  );
  const line = (values: string[]) =>
    values.map((v, i) => i === values.length - 1 ? v : pad(v, widths[i])).join("  ").trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}

function pad(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - displayWidth(text)));
}

/** Width in terminal columns (code points; good enough for names and paths). */
export function displayWidth(text: string): number {
  return [...text].length;
}
