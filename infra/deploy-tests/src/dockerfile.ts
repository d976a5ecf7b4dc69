import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { DOCKERFILE } from './paths.ts';

export interface Stage {
  /** The FROM instruction's image (unexpanded) and stage name. */
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

export function readDockerfile(path = DOCKERFILE): string {
  return readFileSync(path, 'utf8');
}

/** Instructions grouped by build stage; instructions before the first FROM (global ARGs) are dropped. */
export function stages(content: string): Stage[] {
  const dockerfile = DockerfileParser.parse(content);
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toUpperCase() === 'AS');
      result.push({ image: args[0]!, name: as >= 0 ? args[as + 1] : undefined, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

/** Global `ARG NAME=value` defaults (before the first FROM). */
export function globalArgs(content: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const instruction of DockerfileParser.parse(content).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') break;
    if (instruction.getKeyword() !== 'ARG') continue;
    const [name, value] = instruction.getArgumentsContent()!.split('=');
    out[name!] = value ?? '';
  }
  return out;
}

/** `${SERVICE}` as written in the Dockerfile (the build argument naming the service). */
export const SERVICE_ARG = ['$', '{SERVICE}'].join('');

export const keyword = (i: Instruction) => i.getKeyword();
export const text = (i: Instruction) => i.getArgumentsContent() ?? '';
/** The whole instruction as written, flags included (`COPY --from=build …`). */
export const raw = (i: Instruction) => i.getTextContent();
/** Every instruction's text, without the comments. */
export const instructionsText = (content: string) =>
  stages(content)
    .flatMap((s) => s.instructions.map(raw))
    .join('\n');

/** Is this CMD/ENTRYPOINT in exec (JSON) form, so the process is PID 1 without a shell? */
export function execForm(i: Instruction): string[] | undefined {
  try {
    const parsed = JSON.parse(text(i));
    return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}
