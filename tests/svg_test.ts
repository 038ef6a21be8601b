import assert from "node:assert/strict";
import { renderSvg, type SvgRun } from "../lib/client/svg.ts";
import type { PingRecordJson } from "../lib/client/report.ts";
import { lossPercent, RttStats } from "../lib/client/stats.ts";

/** Whether `rsvg-convert` (Debian's librsvg2-bin) can be run here. */
const HAS_RSVG = (() => {
  try {
    return new Deno.Command("rsvg-convert", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!HAS_RSVG) {
  console.log(
    "svg_test.ts: rendering tests skipped: rsvg-convert not found or not allowed " +
      "(apt-get install librsvg2-bin; deno test --allow-run)",
  );
}

/** A run of `pings` with the summary the client would print for it. */
function runOf(pings: PingRecordJson[], target = "127.0.0.1:12000"): SvgRun {
  const stats = new RttStats();
  for (const { rtt } of pings) if (rtt !== null) stats.add(rtt);
  const { min, avg, max, p50 } = stats.summary();
  return {
    target,
    date: new Date(2026, 10, 26, 4, 9, 12),
    pings,
    summary: {
      transmitted: pings.length,
      received: stats.count,
      loss: lossPercent(pings.length, stats.count),
      rtt: { min, avg, max, p50 },
    },
  };
}

/** Records for `rtts` from seq 1, one a second; null is a timeout. */
function records(rtts: (number | null)[], flags: Record<number, string[]> = {}): PingRecordJson[] {
  return rtts.map((rtt, i) => ({
    seq: i + 1,
    sent: 1_795_000_000_000 + i * 1000,
    rtt,
    flags: flags[i + 1] ?? (rtt === null ? ["timeout"] : []),
  }));
}

/** A lab run: 10 requests, 30% loss; seq 7's reply came late, seq 2's twice. */
const LAB_RUN = runOf(
  records([0.512, 0.473, null, 0.632, 1.08, null, 1.66, 0.598, null, 0.701], {
    2: ["duplicate"],
    7: ["timeout", "late"],
  }),
);

interface Element {
  name: string;
  attributes: Record<string, string>;
  /** The element's own text, entities decoded. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const decode = (raw: string) => raw.replace(/&(\w+);/g, (_, name: string) => ENTITIES[name]!);

/**
 * A tiny XML walk, enough for this generator's output: every byte must
 * belong to a tag or to text, tags must nest, attribute values must be
 * quoted, and `&` must start one of XML's five entities. Returns the
 * elements in document order.
 */
function parseXml(xml: string): Element[] {
  const token = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  const elements: Element[] = [];
  const open: Element[] = [];
  while (token.lastIndex < xml.length) {
    const at = token.lastIndex;
    const match = token.exec(xml);
    assert.ok(match, `not well-formed at ${at}: ${JSON.stringify(xml.slice(at, at + 60))}`);
    const [whole, closing, name = "", attributes = "", selfClosing, text] = match;
    assert.doesNotMatch(whole, /&(?!(amp|lt|gt|quot|apos);)/, `a bare & in ${whole}`);
    if (text !== undefined) {
      assert.doesNotMatch(text, />/, `a bare > in ${text}`);
      if (open.length > 0) open[open.length - 1]!.text += decode(text);
      else assert.match(text, /^\s*$/, "text outside the root element");
    } else if (closing) {
      assert.equal(open.pop()?.name, name, `</${name}> closes the wrong element`);
    } else {
      const element: Element = { name, attributes: {}, text: "" };
      for (const [, key = "", value = ""] of attributes.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        element.attributes[key] = decode(value);
      }
      elements.push(element);
      if (!selfClosing) open.push(element);
    }
  }
  assert.deepEqual(open.map((element) => element.name), [], "elements left open");
  return elements;
}

/** The elements named `name` whose class is `className`. */
function marks(elements: Element[], name: string, className: string): Element[] {
  return elements.filter((e) => e.name === name && e.attributes.class === className);
}

function markCounts(elements: Element[]) {
  return {
    reply: marks(elements, "circle", "reply").length,
    late: marks(elements, "circle", "late").length,
    duplicate: marks(elements, "path", "duplicate").length,
    timeout: marks(elements, "path", "timeout").length,
  };
}

const NUMBER = /^-?\d+(\.\d{1,2})?$/;
const NUMERIC_ATTRIBUTES = ["x", "y", "cx", "cy", "r", "width", "height", "stroke-width"];

/** Every coordinate and length is a plain decimal with at most 2 decimals. */
function assertCleanNumbers(elements: Element[], label: string): void {
  for (const { name, attributes } of elements) {
    const numbers = NUMERIC_ATTRIBUTES.flatMap((key) => attributes[key] ?? []);
    numbers.push(...(attributes.viewBox ?? "").split(" ").filter(Boolean));
    numbers.push(...(attributes.d ?? "").split(/[A-Za-z]|\s+/).filter(Boolean));
    for (const value of numbers) {
      assert.match(value, NUMBER, `${label}: <${name}> has ${JSON.stringify(value)}`);
    }
  }
}

/** The text of the `<text>` elements, in order. */
const texts = (elements: Element[]) => elements.filter((e) => e.name === "text").map((e) => e.text);

Deno.test("renderSvg() draws one mark per request: 6 replies, 1 late, 3 timeouts, 1 duplicate", () => {
  const elements = parseXml(renderSvg(LAB_RUN));
  assert.deepEqual(markCounts(elements), { reply: 6, late: 1, duplicate: 1, timeout: 3 });
});

/** The centre of a mark: a circle's, or the middle of a path's bounding
 * box (the generator's paths use M, then relative l and m, and z). */
function centre({ name, attributes }: Element): { x: number; y: number } {
  if (name === "circle") return { x: Number(attributes.cx), y: Number(attributes.cy) };
  const points: [number, number][] = [];
  for (const [, command, xy = ""] of (attributes.d ?? "").matchAll(/([MLlmz])([^MLlmz]*)/g)) {
    const [dx = 0, dy = 0] = xy.trim().split(/\s+/).map(Number);
    const [x, y] = points.at(-1) ?? [0, 0];
    if (command === "M" || command === "L") points.push([dx, dy]);
    else if (command !== "z") points.push([x + dx, y + dy]);
  }
  const xs = points.map(([x]) => x), ys = points.map(([, y]) => y);
  return {
    x: (Math.min(...xs) + Math.max(...xs)) / 2,
    y: (Math.min(...ys) + Math.max(...ys)) / 2,
  };
}

/** The y of the seq axis: the frame is drawn as `M left top V bottom H right`. */
function axisY(elements: Element[]): number {
  const frame = elements.find((e) => /^M[\d.]+ [\d.]+V[\d.]+H[\d.]+$/.test(e.attributes.d ?? ""));
  assert.ok(frame, "no frame");
  return Number(frame.attributes.d!.split(/[VH]/)[1]);
}

Deno.test("renderSvg() places marks in seq order, dots at their RTT from 0, crosses on the axis", () => {
  const elements = parseXml(renderSvg(LAB_RUN));
  const placed = ["reply", "late", "timeout"]
    .flatMap((kind) => marks(elements, kind === "timeout" ? "path" : "circle", kind))
    .map((element) => ({ kind: element.attributes.class, ...centre(element) }))
    .sort((a, b) => a.x - b.x);
  assert.equal(
    placed.map((mark) => mark.kind).join(" "),
    "reply reply timeout reply reply timeout late reply timeout reply",
  );
  const y0 = axisY(elements);
  const pixelsPerMs = (y0 - placed[0]!.y) / 0.512;
  LAB_RUN.pings.forEach((ping, i) => {
    // Linear from 0 ms at the axis; no RTT, on the axis.
    const expected = y0 - (ping.rtt ?? 0) * pixelsPerMs;
    const { y } = placed[i]!;
    assert.ok(Math.abs(y - expected) < 0.05, `seq ${ping.seq}: y ${y}, expected ${expected}`);
  });
  const [duplicate] = marks(elements, "path", "duplicate").map(centre);
  assert.deepEqual(
    duplicate,
    { x: placed[1]!.x, y: placed[1]!.y },
    "the diamond is not around seq 2",
  );
});

Deno.test("renderSvg() titles the chart with target, local date and the summary figures", () => {
  const elements = parseXml(renderSvg(LAB_RUN));
  const lines = texts(elements);
  assert.equal(lines[0], "udping 127.0.0.1:12000 — 2026-11-26 04:09");
  assert.equal(lines[1], "10 sent, 7 received, 30% loss, rtt min/avg/max 0.473/0.808/1.660 ms");
  assert.equal(elements.find((e) => e.name === "title")?.text, lines[0]);
  assert.ok(lines.includes("p50 0.632 ms"), "no p50 label");
  const p50Line = elements.find((e) =>
    e.attributes["stroke-dasharray"] && e.attributes.class !== "key"
  );
  assert.ok(p50Line, "no dashed p50 line");
  const long = parseXml(renderSvg({ ...LAB_RUN, target: `${"h".repeat(60)}.example:12000` }));
  assert.equal(texts(long)[0], `udping ${"h".repeat(39)}… — 2026-11-26 04:09`, "not cut short");
  assert.match(long.find((e) => e.name === "title")!.text, /h{60}\.example:12000/);
  for (const label of ["reply (6)", "late reply (1)", "duplicate (1)", "timeout/error (3)"]) {
    assert.ok(lines.includes(label), `no legend entry ${label}`);
  }
});

/** The RTT axis's labels, bottom to top. */
const rttLabels = (svg: string) =>
  texts(parseXml(svg)).filter((line) => /^[\d.]+ ms$/.test(line)).join(" ");

Deno.test("renderSvg() labels RTT from 0 ms in nice steps and every seq of a short run", () => {
  assert.equal(rttLabels(renderSvg(LAB_RUN)), "0.0 ms 0.5 ms 1.0 ms 1.5 ms 2.0 ms");
  assert.equal(
    rttLabels(renderSvg(runOf(records([0.3, 0.5, 0.8])))),
    "0.00 ms 0.25 ms 0.50 ms 0.75 ms 1.00 ms",
  );
  assert.equal(rttLabels(renderSvg(runOf(records([42])))), "0 ms 20 ms 40 ms 60 ms");
  const seqLabels = texts(parseXml(renderSvg(LAB_RUN))).filter((line) => /^\d+$/.test(line));
  assert.deepEqual(seqLabels, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
});

/** Runs that have broken chart code: each must render, well-formed, with
 * plain numbers, and with the marks it asks for. */
const EDGE_CASES: [string, SvgRun, ReturnType<typeof markCounts>][] = [
  ["no request", runOf([]), { reply: 0, late: 0, duplicate: 0, timeout: 0 }],
  ["no reply", runOf(records(Array(5).fill(null))), {
    reply: 0,
    late: 0,
    duplicate: 0,
    timeout: 5,
  }],
  ["one reply", runOf(records([0.25])), { reply: 1, late: 0, duplicate: 0, timeout: 0 }],
  ["equal RTTs", runOf(records([0.5, 0.5, 0.5, 0.5])), {
    reply: 4,
    late: 0,
    duplicate: 0,
    timeout: 0,
  }],
  ["zero RTTs", runOf(records([0, 0])), { reply: 2, late: 0, duplicate: 0, timeout: 0 }],
  ["tiny RTTs", runOf(records([1e-9, 2e-9])), { reply: 2, late: 0, duplicate: 0, timeout: 0 }],
  ["huge RTTs", runOf(records([1e12, 3])), { reply: 2, late: 0, duplicate: 0, timeout: 0 }],
  [
    "NaN in the summary, a failed send, an outstanding request",
    {
      ...runOf(records([null, null], { 1: ["error"], 2: [] })),
      summary: {
        transmitted: 2,
        received: 0,
        loss: 100,
        rtt: { min: NaN, avg: NaN, max: NaN, p50: NaN },
      },
    },
    { reply: 0, late: 0, duplicate: 0, timeout: 2 },
  ],
  ["an invalid date", { ...runOf(records([1])), date: new Date(NaN) }, {
    reply: 1,
    late: 0,
    duplicate: 0,
    timeout: 0,
  }],
];

Deno.test("renderSvg() writes only finite numbers with at most 2 decimals, whatever the run", () => {
  for (const [label, run, expected] of EDGE_CASES) {
    const svg = renderSvg(run);
    assert.doesNotMatch(svg, /NaN|Infinity/, label);
    const elements = parseXml(svg);
    assertCleanNumbers(elements, label);
    assert.deepEqual(markCounts(elements), expected, label);
  }
});

const HOSTILE_TARGET = `<script>alert("x")</script>&amp;'\u0000]]>`;

Deno.test("renderSvg() escapes a hostile target and stays well-formed XML", () => {
  const svg = renderSvg(runOf(records([0.3]), HOSTILE_TARGET));
  assert.doesNotMatch(svg, /<script/);
  const elements = parseXml(svg);
  assert.ok(!elements.some((e) => e.name === "script"));
  assert.equal(
    texts(elements)[0],
    `udping <script>alert("x")</script>&amp;'\uFFFD]]> — 2026-11-26 04:09`,
  );
});

/** 100,000 requests: RTTs between 0.3 and 0.8 ms, one 20 ms outlier,
 * every 50th lost, every 997th late, every 1009th duplicated. */
function longRun(): SvgRun {
  const rtts = Array.from(
    { length: 100_000 },
    (_, i) => i === 50_000 ? 20 : i % 50 === 49 ? null : 0.3 + ((i * 7919) % 1000) / 2000,
  );
  const flags: Record<number, string[]> = {};
  for (let seq = 997; seq <= rtts.length; seq += 997) {
    if (rtts[seq - 1] !== null) flags[seq] = ["timeout", "late"];
  }
  for (let seq = 1009; seq <= rtts.length; seq += 1009) {
    if (rtts[seq - 1] !== null) flags[seq] = [...(flags[seq] ?? []), "duplicate"];
  }
  return runOf(records(rtts, flags));
}

Deno.test("renderSvg() thins 100,000 requests to at most 3 marks of a kind per pixel column, under 2 MB", () => {
  const svg = renderSvg(longRun());
  assert.ok(svg.length < 2_000_000, `${svg.length} bytes`);
  const elements = parseXml(svg);
  assertCleanNumbers(elements, "100,000 requests");
  const perColumn = new Map<string, number>();
  for (const kind of ["reply", "late", "duplicate", "timeout"]) {
    for (
      const mark of marks(elements, kind === "reply" || kind === "late" ? "circle" : "path", kind)
    ) {
      const key = `${kind} ${Math.round(centre(mark).x)}`;
      perColumn.set(key, (perColumn.get(key) ?? 0) + 1);
    }
  }
  assert.ok(
    Math.max(...perColumn.values()) <= 3,
    `a column with ${Math.max(...perColumn.values())} marks`,
  );
  for (const kind of ["late", "duplicate", "timeout"]) {
    assert.ok([...perColumn.keys()].some((key) => key.startsWith(kind)), `no ${kind} mark left`);
  }
  // The outlier survives: one dot far above all the others.
  const heights = marks(elements, "circle", "reply").map((dot) => Number(dot.attributes.cy)).sort((
    a,
    b,
  ) => a - b);
  assert.ok(heights[1]! - heights[0]! > 100, `no outlier: ${heights.slice(0, 3)}`);
  assert.ok(texts(elements).some((line) => line.startsWith("100000 requests: at most 3 marks")));
  assert.ok(!texts(parseXml(renderSvg(LAB_RUN))).some((line) => line.includes("at most")));
});

/** A temporary directory, removed when the test is done with it. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "udping-svg-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** Renders `svg` with rsvg-convert; the PNG's width and height from its IHDR. */
async function rasterize(svg: string, dir: string): Promise<{ width: number; height: number }> {
  await Deno.writeTextFile(`${dir}/chart.svg`, svg);
  const { success, stderr } = await new Deno.Command("rsvg-convert", {
    args: ["--format", "png", "--output", `${dir}/chart.png`, `${dir}/chart.svg`],
    stdout: "null",
  }).output();
  assert.ok(success, `rsvg-convert failed: ${new TextDecoder().decode(stderr)}`);
  const png = await Deno.readFile(`${dir}/chart.png`);
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    "not a PNG",
  );
  assert.equal(new TextDecoder().decode(png.subarray(12, 16)), "IHDR");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

Deno.test({
  name: "renderSvg() output renders with rsvg-convert to a PNG of the SVG's width and height",
  ignore: !HAS_RSVG,
  async fn() {
    await using dir = await tempDir();
    const runs: [string, SvgRun][] = [
      ["the lab run", LAB_RUN],
      ...EDGE_CASES.map(([label, run]): [string, SvgRun] => [label, run]),
      ["a hostile target", runOf(records([0.3]), HOSTILE_TARGET)],
      ["100,000 requests", longRun()],
    ];
    for (const [label, run] of runs) {
      const svg = renderSvg(run);
      const root = parseXml(svg)[0]!;
      assert.equal(root.name, "svg");
      const size = { width: Number(root.attributes.width), height: Number(root.attributes.height) };
      assert.ok(size.width > 0 && size.height > 0, `${label}: no size`);
      assert.deepEqual(await rasterize(svg, dir.path), size, label);
    }
  },
});
