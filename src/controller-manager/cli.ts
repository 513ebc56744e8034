// Command line of fast-controller-manager.
import type { LogLevel } from '../agent/log.js';

export interface CliOptions {
  kubeconfig?: string;
  cooldownSeconds: number;
  sweepSeconds: number;
  identity?: string;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationSeconds: number;
  logLevel: LogLevel;
}

const USAGE =
  'usage: fast-controller-manager [--kubeconfig PATH] [--cooldown-seconds N] [--sweep-seconds N] [--identity ID] ' +
  '[--lease-namespace NS] [--lease-name NAME] [--lease-duration-seconds N] [--log-level LEVEL]';

export function parseArgs(argv: string[]): CliOptions {
  const o: CliOptions = {
    cooldownSeconds: 30,
    sweepSeconds: 60,
    leaseNamespace: 'kube-system',
    leaseName: 'fast-controller-manager',
    leaseDurationSeconds: 15,
    logLevel: 'info',
  };
  const num = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') throw new Error(USAGE);
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      value = next;
    }
    switch (flag) {
      case '--kubeconfig': o.kubeconfig = value; break;
      case '--cooldown-seconds': o.cooldownSeconds = num(flag, value, 0); break;
      case '--sweep-seconds': o.sweepSeconds = num(flag, value, 1); break;
      case '--identity': o.identity = value; break;
      case '--lease-namespace': o.leaseNamespace = value; break;
      case '--lease-name': o.leaseName = value; break;
      case '--lease-duration-seconds': o.leaseDurationSeconds = num(flag, value, 1); break;
      case '--log-level':
        if (!['debug', 'info', 'warn', 'error'].includes(value)) throw new Error(`--log-level must be debug|info|warn|error`);
        o.logLevel = value as LogLevel;
        break;
      default:
        throw new Error(`unknown flag ${flag}\n${USAGE}`);
    }
  }
  return o;
}
