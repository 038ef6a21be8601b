/**
 * `client.ts --json` against the field table of docs/client.md, and `--json-lines`:
 * a real run (the script as a subprocess, against an uppercasing, lossy,
 * stamping server started here) parsed field by field. Every field the
 * document has is in the table and every field of the table is in the
 * document, each value has the type the table states, and every number is
 * rounded to 3 decimals (µs, for times in ms).
 */

import { assert, assertEquals } from "./assert.ts";
import { ROOT, runScript } from "./helpers.ts";
import { serve } from "../server.ts";

/** The page that holds the `--json` field table. */
const DOC = "docs/client.md";

/** The types the table may name, alone or as `a or b`. */
const TYPES = ["number", "integer", "string", "boolean", "null", "object", "array"] as const;
type TypeName = (typeof TYPES)[number];

/** One row of the field table in docs/client.md. */
interface FieldRow {
  field: string;
  types: TypeName[];
  unit: string;
}

/** The cells of a markdown table row, trimmed, without the outer pipes. */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

/**
 * The table whose first three columns are `field`, `type` and `unit`, by
 * field (backticks removed). Throws when there is no such table, a row
 * names a type outside {@linkcode TYPES}, or a field comes twice.
 */
function fieldTable(markdown: string): Map<string, FieldRow> {
  const lines = markdown.split("\n");
  const start = lines.findIndex((line) => {
    const [field, type, unit] = cells(line);
    return line.trim().startsWith("|") && field === "field" && type === "type" && unit === "unit";
  });
  if (start < 0) throw new Error(`${DOC} has no table with the columns | field | type | unit |`);
  const rows = new Map<string, FieldRow>();
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith("|")) break;
    const [fieldCell = "", typeCell = "", unit = ""] = cells(line);
    const field = fieldCell.replaceAll("`", "");
    const types = typeCell.split(" or ").map((type) => type.trim());
    for (const type of types) {
      assert(
        (TYPES as readonly string[]).includes(type),
        `${DOC} field table: '${field}' has type '${type}', not one of ${TYPES.join(", ")}`,
      );
    }
    assert(!rows.has(field), `${DOC} field table lists '${field}' twice`);
    rows.set(field, { field, types: types as TypeName[], unit });
  }
  assert(rows.size > 0, `${DOC}'s field table has no rows`);
  return rows;
}

/** The field table of docs/client.md, read once. */
const TABLE = fieldTable(await Deno.readTextFile(`${ROOT}${DOC}`));

/**
 * The table's path for a child `key` of the object at `parent`: its own,
 * or the parent's wildcard child (`changed.<kind>`) when the table has one.
 */
function childPath(parent: string, key: string): string {
  const own = parent === "" ? key : `${parent}.${key}`;
  if (TABLE.has(own)) return own;
  const wildcard = [...TABLE.keys()].find((field) =>
    field.startsWith(`${parent}.<`) && field.endsWith(">") &&
    !field.slice(parent.length + 1).includes(".")
  );
  return wildcard ?? own;
}

/**
 * Every field of a JSON value, as the table names them (`rtt.min`,
 * `pings[].seq`, `changed.<kind>`), with every value found there. The
 * elements of an array of objects are walked as `name[]`; arrays of plain
 * values (`pings[].flags`) are one field.
 */
function fieldsOf(value: unknown, path = "", found = new Map<string, unknown[]>()) {
  if (path !== "") found.set(path, [...(found.get(path) ?? []), value]);
  const elements = Array.isArray(value) ? value.filter(isObject) : [];
  for (const element of isObject(value) ? [value] : elements) {
    const parent = Array.isArray(value) ? `${path}[]` : path;
    for (const [key, child] of Object.entries(element)) {
      fieldsOf(child, childPath(parent, key), found);
    }
  }
  return found;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether `value` is of the table's `type`. */
function hasType(value: unknown, type: TypeName): boolean {
  switch (type) {
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return Number.isInteger(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
  }
}

/** Decimals of a number as JSON writes it (`1.25` → 2); an exponent counts
 * as many decimals as it takes (`1e-7` → 7). */
function decimals(value: number): number {
  const [mantissa = "", exponent = "0"] = String(value).split("e");
  const fraction = mantissa.split(".")[1]?.length ?? 0;
  return Math.max(0, fraction - Number(exponent));
}

/** Every number in a JSON value, with where it is (`rtt.min`, `pings[3].sent`). */
function* numbersIn(value: unknown, path = ""): Generator<[string, number]> {
  if (typeof value === "number") yield [path, value];
  else if (Array.isArray(value)) {
    for (const [index, element] of value.entries()) yield* numbersIn(element, `${path}[${index}]`);
  } else if (isObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      yield* numbersIn(child, path === "" ? key : `${path}.${key}`);
    }
  }
}

/** Fails naming every number of `value` with more than 3 decimals. */
function assertRounded(value: unknown, what: string): void {
  const noisy = [...numbersIn(value)].filter(([, number]) => decimals(number) > 3);
  assertEquals(
    noisy.map(([path, number]) => `${path} = ${number}`),
    [],
    `${what}: numbers with more than 3 decimals`,
  );
}

/** A 20-ping run, printed with `flags`, against an uppercasing server that
 * drops ~30% (seeded) and stamps its replies. */
async function lossyRun(flags: string[], permissions?: string[]) {
  await using server = await serve({ port: 0, mode: "upper", loss: 0.3, seed: 1 });
  const args = ["127.0.0.1", String(server.addr.port), "-c", "20", "-i", "0.05", ...flags];
  return await runScript("client.ts", args, { permissions });
}

/** The `--json` document of a 20-ping run against an uppercasing server
 * that drops ~30% (seeded) and stamps its replies. */
async function jsonRun(permissions: string[]): Promise<Record<string, unknown>> {
  const result = await lossyRun(["--json"], permissions);
  assertEquals(result.code, 0, `client.ts --json exited ${result.code}: ${result.stderr}`);
  const document: unknown = JSON.parse(result.stdout);
  assert(isObject(document), `--json printed no object: ${result.stdout.slice(0, 200)}`);
  // The run must have every kind of figure the table describes.
  const { transmitted, received, lossSplit, serverTime, changed } = document;
  assertEquals(transmitted, 20, "requests sent");
  assert(
    typeof received === "number" && received > 0 && received < 20,
    `the run needs replies and losses, got ${received} of 20 answered`,
  );
  assert(isObject(lossSplit) && isObject(serverTime), "the run needs stamped replies");
  assert(isObject(changed) && changed.uppercased === received, "every reply uppercased");
  return document;
}

const FFI_PERMISSIONS = ["--allow-net", "--allow-ffi"];

for (
  const [clock, permissions] of [
    ["runtime", ["--allow-net"]],
    ["kernel", FFI_PERMISSIONS],
  ] as const
) {
  Deno.test({
    name:
      `--json (${clock} clock) has exactly the docs/client.md table's fields, each of its stated type`,
    ignore: clock === "kernel" && Deno.build.os !== "linux",
    async fn() {
      const document = await jsonRun([...permissions]);
      assertEquals(document.clock, clock, "the clock named in the document");
      const found = fieldsOf(document);
      const extra = [...found.keys()].filter((field) => !TABLE.has(field));
      const missing = [...TABLE.keys()].filter((field) => !found.has(field));
      assertEquals(extra, [], `fields of --json missing from ${DOC}'s table`);
      assertEquals(missing, [], `fields of ${DOC}'s table missing from --json`);
      for (const [field, values] of found) {
        const { types } = TABLE.get(field)!;
        for (const value of values) {
          assert(
            types.some((type) => hasType(value, type)),
            `${field} is ${JSON.stringify(value)}, but ${DOC}'s table says ${types.join(" or ")}`,
          );
        }
      }
    },
  });
}

Deno.test("--json rounds every time in ms to 3 decimals and states the unit once", async () => {
  const document = await jsonRun(["--allow-net"]);
  const found = fieldsOf(document);
  for (const [field, { unit }] of TABLE) {
    if (!unit.startsWith("ms")) continue;
    for (const value of found.get(field) ?? []) {
      if (value === null) continue;
      assert(typeof value === "number", `${field} (in ${unit}) is not a number: ${value}`);
      assert(decimals(value) <= 3, `${field} (in ${unit}) has more than 3 decimals: ${value}`);
    }
  }
  assertRounded(document, "--json");
  const units = document.units;
  assert(isObject(units) && typeof units.time === "string", "the units object");
  assert(units.time.startsWith("ms"), `units.time says ${units.time}`);
});

Deno.test("--json-lines prints one parseable object per line, every number to 3 decimals", async () => {
  const result = await lossyRun(["--json-lines", "-v"]);
  assertEquals(result.code, 0, `client.ts --json-lines exited ${result.code}: ${result.stderr}`);
  const lines = result.stdout.trimEnd().split("\n");
  const events = lines.map((line, index) => {
    try {
      return JSON.parse(line) as { type?: string };
    } catch {
      throw new Error(`--json-lines line ${index + 1} is not JSON: ${line}`);
    }
  });
  const types = new Set(events.map((event) => event.type));
  for (const type of ["sent", "reply", "timeout", "summary"]) {
    assert(types.has(type), `no '${type}' event among ${[...types].join(", ")}`);
  }
  assertEquals(events.at(-1)?.type, "summary", "the last line");
  for (const [index, event] of events.entries()) assertRounded(event, `line ${index + 1}`);
});
