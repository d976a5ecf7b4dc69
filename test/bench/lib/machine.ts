import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { basename } from 'node:path';

export interface MachineDescription {
  nproc: number;
  cpuModel: string;
  memoryTotalGiB: number;
  /** `free -h` as printed. */
  free: string;
  kernel: string;
  os: string;
  node: string;
  redis: string;
  /** The filesystem the spools, the store and Redis's AOF live on (the temp dir). */
  disk: { path: string; device: string; fsType: string; mountOptions: string; rotational: string };
}

const sh = (command: string, args: string[]) => {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `(${command} failed)`;
};

export function describeMachine(): MachineDescription {
  const dir = os.tmpdir();
  const df = sh('df', ['-PT', dir]).split('\n').at(-1)?.split(/\s+/) ?? [];
  const device = df[0] ?? 'unknown';
  const mount = df[6] ?? '/';
  let mountOptions = 'unknown';
  try {
    const line = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === mount && l.startsWith(device));
    mountOptions = line?.split(' ')[3] ?? 'unknown';
  } catch {}
  let rotational = 'unknown';
  try {
    const dev = basename(device).replace(/p?\d+$/, '');
    rotational =
      readFileSync(`/sys/block/${dev}/queue/rotational`, 'utf8').trim() === '0' ? 'no (SSD/virtual)' : 'yes';
  } catch {}
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    free: sh('free', ['-h']),
    kernel: os.release(),
    os: `${os.type()} ${os.arch()}`,
    node: process.version,
    redis: sh('redis-server', ['--version']),
    disk: { path: dir, device, fsType: df[1] ?? 'unknown', mountOptions, rotational },
  };
}
