/**
 * The `lorac` command line. Thin over lib/: each command parses its flags and
 * calls the library.
 *
 * ```text
 * lorac train    --base_path dataset --output_dir runs/x ...   fine-tune LoRA adapters (deno task train)
 * lorac predict  --base_path dataset --output_dir runs/x ...   predict, score, report (deno task predict)
 * lorac data     arxiv | spam-assassin ...                     build a dataset (deno task data)
 * lorac demo     [--quick]                                     the whole path on a small dataset (deno task demo)
 * lorac info     [--device cpu]                                the device and kernel path in use
 * ```
 *
 * Every error ends the command with one line on stderr, `lorac: <what is
 * wrong and what to do>`, and exit status 1.
 *
 * @module
 */

import { Command } from "commander";
import { openBackend } from "../lib/backend/backend.ts";
import { dataCommand } from "./data.ts";
import { demoCommand } from "./demo.ts";
import { parseDevice } from "./options.ts";
import { predictCommand } from "./predict.ts";
import { trainCommand } from "./train.ts";

/** Sends commander's own errors (unknown flag, missing value) out as `lorac: ...`, like ours. */
function loracOutput(cmd: Command): void {
  cmd.configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "lorac: ")) });
  cmd.showSuggestionAfterError(true);
  for (const sub of cmd.commands) loracOutput(sub);
}

/**
 * Builds the command tree (exported for tests).
 *
 * @example
 * ```ts
 * import { program } from "./main.ts";
 * program().commands.map((c) => c.name()); // ["info", "train", "predict", "data", "demo"]
 * ```
 */
export function program(): Command {
  const root = new Command("lorac")
    .description("Instruction-tune a Llama-family LLM to classify texts with LoRA on a 4-bit NF4 base")
    .version("0.1.0");
  root.command("info")
    .description("Show which device and kernel path lorac would use")
    .option("--device <device>", "auto | cpu | cuda (auto: CUDA when a GPU answers, else the CPU)", parseDevice, "auto")
    .action(async (options: { device: "auto" | "cpu" | "cuda" }) => {
      using backend = await openBackend(options.device);
      console.log(backend.deviceName);
    });
  root.addCommand(trainCommand());
  root.addCommand(predictCommand());
  root.addCommand(dataCommand());
  root.addCommand(demoCommand());
  loracOutput(root);
  return root;
}

/**
 * The line a failed command prints: the first line of the error's message (a
 * stack or a cause chain is for debugging, not for users), and for a disk
 * that is full (or a file size or quota limit) what to do about it.
 *
 * @example
 * ```ts
 * import { errorLine } from "./main.ts";
 * errorLine(new Error("cannot write out/results.txt: No space left on device (os error 28)"));
 * // "lorac: cannot write out/results.txt: No space left on device (os error 28); free disk space or choose ..."
 * ```
 */
export function errorLine(e: unknown): string {
  const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  // ENOSPC, EFBIG, EDQUOT: the write failed for want of room, not because of lorac's input.
  const full = /\(os error (28|27|122)\)/.test(message);
  return `lorac: ${message}${full ? "; free disk space or choose another output folder" : ""}`;
}

if (import.meta.main) {
  try {
    await program().parseAsync(["deno", "lorac", ...Deno.args]);
  } catch (e) {
    console.error(errorLine(e));
    Deno.exit(1);
  }
}
