/**
 * LAB.md, run as a student would: each step's server and client commands,
 * the client's output compared in shape with the output shown (numbers may
 * differ; the lines, their order and their words may not).
 */

import { assert, assertEquals } from "./assert.ts";
import { ROOT, runScript, startServerProcess } from "./helpers.ts";

interface Step {
  server: string;
  client: string;
  output: string;
}

/** The steps of LAB.md: each `sh server` block with the `sh client` and
 * `text output` blocks after it. */
function labSteps(markdown: string): Step[] {
  const blocks = [...markdown.matchAll(/```(sh server|sh client|text output)\n([\s\S]*?)```/g)];
  const steps: Step[] = [];
  for (const [, kind, body = ""] of blocks) {
    if (kind === "sh server") steps.push({ server: body.trim(), client: "", output: "" });
    else if (kind === "sh client") steps.at(-1)!.client = body.trim();
    else steps.at(-1)!.output = body;
  }
  return steps;
}

/** A line's shape: every number replaced by N. */
const shape = (text: string) =>
  text.trimEnd().split("\n").map((line) => line.replace(/\d+(\.\d+)?/g, "N"));

/** `deno run --allow-net script.ts args…` → [script, args]. */
function command(line: string): [string, string[]] {
  const words = line.split(/\s+/);
  assertEquals(words.slice(0, 3), ["deno", "run", "--allow-net"], line);
  return [words[3]!, words.slice(4)];
}

const steps = labSteps(await Deno.readTextFile(`${ROOT}LAB.md`));

Deno.test("LAB.md has the four steps it walks through", () => {
  assertEquals(steps.length, 4);
  for (const [index, step] of steps.entries()) {
    const where = `LAB.md step ${index + 1} (server: ${step.server})`;
    assert(step.client !== "", `${where} has no \`sh client\` block after its server`);
    assert(step.output !== "", `${where} has no \`text output\` block after its client`);
  }
});

for (const [index, step] of steps.entries()) {
  Deno.test(`LAB.md step ${index + 1}: ${step.client.slice(21)} prints what the page shows`, async () => {
    const [serverScript, serverArgs] = command(step.server);
    assertEquals(serverScript, "server.ts");
    // A free port instead of 12000, so a lab server already running on this
    // machine does not get in the way.
    await using server = await startServerProcess(serverArgs);
    const [clientScript, clientArgs] = command(step.client);
    const args = clientArgs.map((arg) => (arg === "12000" ? String(server.port) : arg));
    const result = await runScript(clientScript, args);
    assertEquals(shape(result.stdout), shape(step.output));
  });
}
