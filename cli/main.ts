/**
 * The `lorac` command line. Thin over lib/: each command parses its flags and
 * calls the library.
 *
 * @module
 */

import { Command } from "commander";
import { type DeviceChoice, openBackend } from "../lib/backend/backend.ts";

const devices: readonly DeviceChoice[] = ["auto", "cpu", "cuda"];

function parseDevice(value: string): DeviceChoice {
  if (!(devices as readonly string[]).includes(value)) {
    throw new Error(`--device must be one of ${devices.join(", ")}, got "${value}"`);
  }
  return value as DeviceChoice;
}

/** Builds the command tree (exported for tests). */
export function program(): Command {
  const root = new Command("lorac")
    .description("Instruction-tune a Llama-family LLM to classify texts with LoRA on a 4-bit NF4 base")
    .version("0.1.0");
  root.command("info")
    .description("Show which device and kernel path lorac would use")
    .option("--device <device>", "auto | cpu | cuda (auto: CUDA when a GPU answers, else the CPU)", "auto")
    .action(async (options: { device: string }) => {
      using backend = await openBackend(parseDevice(options.device));
      console.log(backend.deviceName);
    });
  return root;
}

if (import.meta.main) {
  try {
    await program().parseAsync(["deno", "lorac", ...Deno.args]);
  } catch (e) {
    console.error(`lorac: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
