/**
 * Everything the client prints, in one place: ping's reply lines and
 * summary. Pure functions from events and figures to text.
 *
 * @module
 */

import type { PingEvent, PingSummary } from "./client.ts";

/**
 * An RTT as iputils ping prints it after `time=`: three decimals below 1 ms,
 * two below 10 ms, one below 100 ms, none above.
 */
export function formatTime(ms: number): string {
  if (ms >= 100 - 0.05) return Math.round(ms).toString();
  if (ms >= 10 - 0.005) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** A number as C's `%g` prints it: 6 significant digits, no trailing zeros. */
export function formatG(value: number): string {
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(6)))));
  if (exponent < -4 || exponent >= 6) {
    const [mantissa = "", power = "0"] = value.toExponential(5).split("e");
    const trimmed = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    const sign = power.startsWith("-") ? "-" : "+";
    return `${trimmed}e${sign}${power.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  const fixed = value.toFixed(Math.max(0, 5 - exponent));
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/** `PING 127.0.0.1:12000 (udp): 64 data bytes` */
export function headerLine(target: string, size: number): string {
  return `PING ${target} (udp): ${size} data bytes`;
}

/** The line ping prints for one event, or `undefined` for events it keeps
 * to itself (strays, the summary). */
export function eventLine(event: PingEvent): string | undefined {
  switch (event.type) {
    case "reply":
    case "duplicate": {
      const mark = event.type === "duplicate" ? " (DUP!)" : event.late ? " (late)" : "";
      return `${event.bytes} bytes from ${event.from}: seq=${event.seq} time=${
        formatTime(event.rtt)
      } ms${mark}`;
    }
    case "timeout":
      return `Request timeout for seq=${event.seq}`;
    case "error":
      return `From ${event.target}: seq=${event.seq} ${event.message}`;
    default:
      return undefined;
  }
}

/** The blank line and two (or, with no reply, one) lines of ping's summary. */
export function summaryLines(summary: PingSummary): string[] {
  const counts = [
    `${summary.transmitted} packets transmitted`,
    `${summary.received} received`,
  ];
  if (summary.duplicates > 0) counts.push(`+${summary.duplicates} duplicates`);
  if (summary.errors > 0) counts.push(`+${summary.errors} errors`);
  counts.push(`${formatG(summary.loss)}% packet loss`, `time ${Math.round(summary.time)}ms`);
  const lines = ["", `--- ${summary.target} udp ping statistics ---`, counts.join(", ")];
  const { rtt } = summary;
  if (rtt.count > 0) {
    const figures = [rtt.min, rtt.avg, rtt.max, rtt.mdev].map((ms) => ms.toFixed(3));
    lines.push(`rtt min/avg/max/mdev = ${figures.join("/")} ms`);
  }
  return lines;
}
