/**
 * A ping run as an SVG chart for a lab report: the RTT of each request by
 * its sequence number, with the median as a dashed line, lost requests as
 * crosses on the seq axis, late replies and duplicates in marks of their
 * own, and a title with the target, the date and the summary figures.
 * Hand-written SVG 1.1 with presentation attributes only (no CSS, no
 * scripts, no fonts to embed), so that word processors and `rsvg-convert`
 * read it alike. Pure: a run in, a document out.
 *
 * Every mark has a `class` naming its kind (`reply`, `late`, `duplicate`,
 * `timeout`); legend swatches have the class `key` so they are not counted.
 *
 * @module
 */

import { formatG, formatTime, type PingRecordJson } from "./report.ts";

/** One request of a run, as `--json` lists it; re-exported for users of {@linkcode SvgRun}. */
export type { PingRecordJson };

/**
 * What the chart needs of a run: its target, when it started, one record per
 * request (as `--json` lists them) and the summary figures.
 */
export interface SvgRun {
  /** The target as the user named it, e.g. `127.0.0.1:12000`; any text. */
  target: string;
  /** The start of the run; the title shows it in local time. */
  date: Date;
  /** One record per request, in the order they were sent. */
  pings: PingRecordJson[];
  /** The run's figures; the `rtt` ones are NaN when no reply came. */
  summary: {
    transmitted: number;
    received: number;
    /** Percent. */
    loss: number;
    /** Milliseconds. */
    rtt: { min: number; avg: number; max: number; p50: number };
  };
}

/** The document's size in pixels (user units). */
const WIDTH = 800;
const HEIGHT = 400;
/** The plot area inside the margins that hold the title, legend and axes. */
const PLOT = { left: 84, right: 704, top: 86, bottom: 336 } as const;
/**
 * Long runs are thinned: per pixel column and kind, marks that land on the
 * same pixel are drawn once, and of the rest only the lowest, the median and
 * the highest are kept, so a run of 100,000 requests (or millions) takes
 * about 150 kB while its spread and its outliers stay visible.
 */
const MAX_MARKS_PER_COLUMN = 3;
/** Beyond this the target is cut short with "…" in the heading so it fits
 * (the document's `<title>` keeps it whole). */
const MAX_TARGET_CHARS = 40;
/** The smallest RTT axis, ms: keeps tick steps finite for tiny RTTs. */
const MIN_RTT_AXIS_MS = 0.001;
/** The RTT axis when no reply came, ms. */
const EMPTY_RTT_AXIS_MS = 1;
/** Room above the highest RTT, so no dot sits on the frame. */
const HEADROOM = 1.1;
const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;

/** The colours of the kinds of mark; shapes differ too, for grey prints. */
const COLOR = {
  reply: "#1f77b4",
  late: "#e6850e",
  duplicate: "#9467bd",
  timeout: "#d62728",
  p50: "#2ca02c",
  axis: "#333333",
  grid: "#e3e3e3",
  note: "#666666",
} as const;

/** A kind of mark, and its `class`. */
type Kind = "reply" | "late" | "duplicate" | "timeout";
const KINDS: readonly Kind[] = ["reply", "late", "duplicate", "timeout"];
const LABEL: Record<Kind, string> = {
  reply: "reply",
  late: "late reply",
  duplicate: "duplicate",
  timeout: "timeout/error",
};

/** One mark, in pixels. */
interface Mark {
  kind: Kind;
  x: number;
  y: number;
}

/** Where things go: both axes' ranges and ticks, and the size of a dot. */
interface Scale {
  x(seq: number): number;
  y(rtt: number): number;
  seqTicks: number[];
  rttTicks: number[];
  rttDecimals: number;
  radius: number;
}

/**
 * Renders a run as a standalone SVG document, 800×400.
 *
 * Shows each reply's RTT by seq (dots; late replies as orange rings), a
 * diamond around each reply that came more than once, a red cross on the
 * seq axis for each request that got no reply (timeout, failed send or
 * still outstanding), the median as a dashed line, a legend with the count
 * of each kind, and a title and subtitle with the summary. Text is escaped;
 * numbers have at most 2 decimals and are never NaN or Infinity, whatever
 * the run (no reply, one, all alike, 100,000 requests). A run with more
 * requests than the plot has pixel columns (620) is thinned to at most 3
 * marks of a kind per column, and a note under the plot says so.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./svg.ts";
 * import assert from "node:assert/strict";
 *
 * const svg = renderSvg({
 *   target: "127.0.0.1:12000",
 *   date: new Date(2026, 10, 26, 4, 9),
 *   pings: [
 *     { seq: 1, sent: 0, rtt: 0.473, flags: [] },
 *     { seq: 2, sent: 1000, rtt: null, flags: ["timeout"] },
 *   ],
 *   summary: {
 *     transmitted: 2,
 *     received: 1,
 *     loss: 50,
 *     rtt: { min: 0.473, avg: 0.473, max: 0.473, p50: 0.473 },
 *   },
 * });
 * assert.ok(svg.startsWith("<svg"));
 * assert.match(svg, /udping 127\.0\.0\.1:12000 — 2026-11-26 04:09/);
 * assert.equal(svg.match(/<circle class="reply"/g)?.length, 1);
 * assert.equal(svg.match(/<path class="timeout"/g)?.length, 1);
 * ```
 */
export function renderSvg(run: SvgRun): string {
  const pings = run.pings.filter((ping) => Number.isFinite(ping.seq));
  const scale = scaleOf(pings, run.summary.rtt.p50);
  const all = pings.flatMap((ping) => marksOf(ping, scale));
  const shown = thin(all);
  const counts = Object.fromEntries(
    KINDS.map((kind) => [kind, all.filter((mark) => mark.kind === kind).length]),
  ) as Record<Kind, number>;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT}>`,
    `<title>${escapeXml(titleText(run, Infinity))}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    ...headingLines(run),
    ...legendLines(counts, Number.isFinite(run.summary.rtt.p50)),
    ...axisLines(scale),
    ...p50Lines(run.summary.rtt.p50, scale),
    ...markLines(shown, scale.radius),
    ...(shown.length < all.length ? [thinningNote(pings.length)] : []),
    "</svg>",
    "",
  ].join("\n");
}

/** The marks of one request: its dot (or cross) and a duplicate's diamond. */
function marksOf(ping: PingRecordJson, scale: Scale): Mark[] {
  const x = scale.x(ping.seq);
  const answered = ping.rtt !== null && Number.isFinite(ping.rtt);
  const y = answered ? scale.y(Math.max(0, ping.rtt!)) : PLOT.bottom;
  const marks: Mark[] = [{
    kind: !answered ? "timeout" : ping.flags.includes("late") ? "late" : "reply",
    x,
    y,
  }];
  if (ping.flags.includes("duplicate")) marks.push({ kind: "duplicate", x, y });
  return marks;
}

/** The axes' ranges: seq with half a step to spare each side, RTT from 0
 * to a nice value above the highest RTT and the median. */
function scaleOf(pings: PingRecordJson[], p50: number): Scale {
  let seqLow = Infinity, seqHigh = -Infinity, rttHigh = 0;
  for (const { seq, rtt } of pings) {
    seqLow = Math.min(seqLow, seq);
    seqHigh = Math.max(seqHigh, seq);
    if (rtt !== null && Number.isFinite(rtt)) rttHigh = Math.max(rttHigh, rtt);
  }
  if (pings.length === 0) seqLow = seqHigh = 1;
  if (Number.isFinite(p50)) rttHigh = Math.max(rttHigh, p50);
  rttHigh = rttHigh > 0 ? Math.max(rttHigh * HEADROOM, MIN_RTT_AXIS_MS) : EMPTY_RTT_AXIS_MS;
  const rttStep = niceStep(rttHigh / 4, [1, 2, 2.5, 5]);
  const rttTop = Math.ceil(rttHigh / rttStep) * rttStep;
  const seqStep = Math.max(1, niceStep((seqHigh - seqLow) / 10, [1, 2, 5]));
  const seqSpan = seqHigh - seqLow + 1;
  const plotWidth = PLOT.right - PLOT.left;
  const firstTick = Math.ceil(seqLow / seqStep) * seqStep;
  return {
    x: (seq) => PLOT.left + ((seq - seqLow + 0.5) / seqSpan) * plotWidth,
    y: (rtt) => PLOT.bottom - (rtt / rttTop) * (PLOT.bottom - PLOT.top),
    seqTicks: range(
      Math.floor((seqHigh - firstTick) / seqStep) + 1,
      (i) => firstTick + i * seqStep,
    ),
    rttTicks: range(Math.round(rttTop / rttStep) + 1, (i) => i * rttStep),
    rttDecimals: decimalsOf(rttStep),
    radius: Math.min(4, Math.max(1.5, (plotWidth / seqSpan) * 0.35)),
  };
}

/** The smallest of `mantissas` × 10^k that is at least `raw`. */
function niceStep(raw: number, mantissas: number[]): number {
  if (!(raw > 0)) return mantissas[0]!;
  const power = 10 ** Math.floor(Math.log10(raw));
  const mantissa = mantissas.find((m) => m * power >= raw * (1 - 1e-9));
  return (mantissa ?? 10) * power;
}

/** How many decimals print `step` and its multiples exactly. */
function decimalsOf(step: number): number {
  for (let decimals = 0; decimals < 12; decimals++) {
    if (Math.abs(Number(step.toFixed(decimals)) - step) <= step * 1e-9) return decimals;
  }
  return 12;
}

function range(length: number, at: (i: number) => number): number[] {
  return Array.from({ length: Math.max(0, length) }, (_, i) => at(i));
}

/**
 * Keeps, per kind and pixel column, one mark per pixel, and of those at
 * most {@linkcode MAX_MARKS_PER_COLUMN}: the lowest, the median and the
 * highest. Short runs (a request per column or fewer) pass unchanged.
 */
function thin(marks: Mark[]): Mark[] {
  const columns = new Map<string, Mark[]>();
  const pixels = new Set<string>();
  for (const mark of marks) {
    const column = `${mark.kind} ${Math.round(mark.x)}`;
    const pixel = `${column} ${Math.round(mark.y)}`;
    if (pixels.has(pixel)) continue;
    pixels.add(pixel);
    const kept = columns.get(column);
    if (kept === undefined) columns.set(column, [mark]);
    else kept.push(mark);
  }
  return [...columns.values()].flatMap((column) => {
    if (column.length <= MAX_MARKS_PER_COLUMN) return column;
    const sorted = column.sort((a, b) => a.y - b.y);
    return [sorted[0]!, sorted[Math.floor(sorted.length / 2)]!, sorted[sorted.length - 1]!];
  });
}

/** A coordinate or length with at most 2 decimals. Every number in the
 * document goes through here; a non-finite one is a bug in this file. */
function num(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`svg: a coordinate is ${value}`);
  const rounded = Math.round(value * 100) / 100;
  return String(rounded === 0 ? 0 : rounded);
}

/** `&`, `<`, `>` and quotes as entities; control characters and lone
 * surrogates (XML 1.0 forbids most of them) as U+FFFD. */
function escapeXml(text: string): string {
  return text
    .replace(/[\p{Cc}\p{Cs}\uFFFE\uFFFF]/gu, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** `<text>` at (x, y) with escaped content and extra attributes. */
function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${num(x)}" y="${num(y)}"${attributes ? ` ${attributes}` : ""}>${
    escapeXml(content)
  }</text>`;
}

const ms3 = (ms: number) => ms.toFixed(3);

/** `udping 127.0.0.1:12000 — 2026-11-26 04:09`, the target cut short
 * beyond `maxTargetChars`. */
function titleText(run: SvgRun, maxTargetChars: number): string {
  const chars = [...run.target];
  const target = chars.length > maxTargetChars
    ? `${chars.slice(0, maxTargetChars - 1).join("")}…`
    : run.target;
  const date = run.date;
  if (Number.isNaN(date.getTime())) return `udping ${target}`;
  const two = (n: number) => String(n).padStart(2, "0");
  return `udping ${target} — ${date.getFullYear()}-${two(date.getMonth() + 1)}-${
    two(date.getDate())
  } ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** `10 sent, 7 received, 30% loss, rtt min/avg/max 0.473/0.808/1.660 ms` */
function subtitleText(summary: SvgRun["summary"]): string {
  const { min, avg, max } = summary.rtt;
  const counts = `${summary.transmitted} sent, ${summary.received} received, ${
    formatG(summary.loss)
  }% loss`;
  if (![min, avg, max].every(Number.isFinite)) return counts;
  return `${counts}, rtt min/avg/max ${[min, avg, max].map(ms3).join("/")} ms`;
}

function headingLines(run: SvgRun): string[] {
  return [
    text(
      PLOT.left,
      26,
      titleText(run, MAX_TARGET_CHARS),
      `font-size="16" font-weight="bold" fill="#000000"`,
    ),
    text(PLOT.left, 47, subtitleText(run.summary), `font-size="13" fill="${COLOR.axis}"`),
  ];
}

/** A row of swatches with labels and counts, between subtitle and plot. */
function legendLines(counts: Record<Kind, number>, withP50: boolean): string[] {
  const y = 68;
  const lines = [`<g font-size="12" fill="${COLOR.axis}">`];
  let x = PLOT.left + 6;
  for (const kind of KINDS) {
    lines.push(swatch(kind, x, y - 4));
    const label = `${LABEL[kind]} (${counts[kind]})`;
    lines.push(text(x + 10, y, label));
    x += 10 + label.length * 7 + 22;
  }
  if (withP50) {
    lines.push(
      `<path class="key" d="M${num(x - 6)} ${num(y - 4)}h18" stroke="${COLOR.p50}" ` +
        `stroke-width="1.5" stroke-dasharray="5 3"/>`,
      text(x + 16, y, "p50 (median)"),
    );
  }
  lines.push("</g>");
  return lines;
}

/** A legend swatch centred at (x, y), drawn as the marks are. */
function swatch(kind: Kind, x: number, y: number): string {
  const style = markStyle(kind);
  if (kind === "reply" || kind === "late") {
    return `<circle class="key" cx="${num(x)}" cy="${num(y)}" r="4" ${style}/>`;
  }
  return `<path class="key" d="${shapePath(kind, x, y, 4)}" ${style}/>`;
}

/** The presentation attributes of a kind of mark. */
function markStyle(kind: Kind): string {
  switch (kind) {
    case "reply":
      return `fill="${COLOR.reply}" fill-opacity="0.85"`;
    case "late":
      return `fill="#ffffff" stroke="${COLOR.late}" stroke-width="2"`;
    case "duplicate":
      return `fill="none" stroke="${COLOR.duplicate}" stroke-width="1.5"`;
    case "timeout":
      return `fill="none" stroke="${COLOR.timeout}" stroke-width="2"`;
  }
}

/** A diamond (duplicate) or a cross (timeout) around (x, y). */
function shapePath(kind: "duplicate" | "timeout", x: number, y: number, size: number): string {
  const s = num(size);
  if (kind === "timeout") {
    return `M${num(x - size)} ${num(y - size)}l${num(2 * size)} ${num(2 * size)}m0 -${
      num(2 * size)
    }l-${num(2 * size)} ${num(2 * size)}`;
  }
  return `M${num(x)} ${num(y - size)}l${s} ${s}l-${s} ${s}l-${s} -${s}z`;
}

/** Grid lines and ticks, the frame, and the axis titles. */
function axisLines(scale: Scale): string[] {
  const { left, right, top, bottom } = PLOT;
  const lines = [`<g font-size="11" fill="${COLOR.axis}">`];
  for (const rtt of scale.rttTicks) {
    const y = scale.y(rtt);
    lines.push(
      `<path d="M${num(left)} ${num(y)}H${num(right)}" stroke="${COLOR.grid}"/>`,
      text(left - 8, y + 4, `${rtt.toFixed(scale.rttDecimals)} ms`, `text-anchor="end"`),
    );
  }
  for (const seq of scale.seqTicks) {
    const x = scale.x(seq);
    lines.push(
      `<path d="M${num(x)} ${num(bottom)}v6" stroke="${COLOR.axis}"/>`,
      text(x, bottom + 19, String(seq), `text-anchor="middle"`),
    );
  }
  lines.push(
    `<path d="M${num(left)} ${num(top)}V${num(bottom)}H${num(right)}" fill="none" ` +
      `stroke="${COLOR.axis}"/>`,
    text((left + right) / 2, bottom + 38, "sequence number", `text-anchor="middle" font-size="12"`),
    "</g>",
  );
  return lines;
}

/** The median as a dashed line across the plot, labelled in the right
 * margin, where no mark can hide it, with ping's decimals so it fits. */
function p50Lines(p50: number, scale: Scale): string[] {
  if (!Number.isFinite(p50) || p50 < 0) return [];
  const y = scale.y(p50);
  return [
    `<path d="M${num(PLOT.left)} ${num(y)}H${num(PLOT.right)}" stroke="${COLOR.p50}" ` +
    `stroke-width="1.5" stroke-dasharray="6 4"/>`,
    text(PLOT.right + 6, y + 4, `p50 ${formatTime(p50)} ms`, `font-size="12" fill="${COLOR.p50}"`),
  ];
}

/** The marks, one group per kind so each kind's style is written once;
 * duplicates' diamonds over the dots, crosses last over the axis. */
function markLines(marks: Mark[], radius: number): string[] {
  const lines: string[] = [];
  for (const kind of KINDS) {
    const ofKind = marks.filter((mark) => mark.kind === kind);
    if (ofKind.length === 0) continue;
    lines.push(`<g ${markStyle(kind)}>`);
    for (const { x, y } of ofKind) {
      lines.push(
        kind === "reply" || kind === "late"
          ? `<circle class="${kind}" cx="${num(x)}" cy="${num(y)}" r="${num(radius)}"/>`
          : `<path class="${kind}" d="${
            shapePath(kind, x, y, kind === "duplicate" ? radius + 3 : Math.max(3, radius))
          }"/>`,
      );
    }
    lines.push("</g>");
  }
  return lines;
}

/** Says that not every request has a mark of its own. */
function thinningNote(requests: number): string {
  return text(
    PLOT.right,
    HEIGHT - 8,
    `${requests} requests: at most ${MAX_MARKS_PER_COLUMN} marks of a kind per pixel column ` +
      `(lowest, median, highest)`,
    `text-anchor="end" font-size="10" fill="${COLOR.note}"`,
  );
}
