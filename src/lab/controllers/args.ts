// Command line of fast-lab-controllers (see main.ts).
import type { LogLevel } from '../../agent/log.js';
import { CONTROLLER_NAMES, type ControllerName } from './manager.js';

export const USAGE = `usage: fast-lab-controllers [--kubeconfig PATH] [--controllers ${CONTROLLER_NAMES.join(',')}] [--workers N] [--log-level debug|info|warn|error]`;

export interface Args {
  kubeconfig?: string;
  controllers: ControllerName[];
  workers: number;
  logLevel: LogLevel;
  help?: boolean;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { controllers: [...CONTROLLER_NAMES], workers: 2, logLevel: 'info' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--kubeconfig':
        args.kubeconfig = value();
        break;
      case '--controllers': {
        const names = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const n of names) {
          if (!(CONTROLLER_NAMES as readonly string[]).includes(n)) throw new Error(`unknown controller ${n}`);
        }
        args.controllers = names as ControllerName[];
        break;
      }
      case '--workers': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error('--workers must be a positive integer');
        args.workers = n;
        break;
      }
      case '--log-level': {
        const l = value();
        if (!['debug', 'info', 'warn', 'error'].includes(l)) throw new Error(`unknown log level ${l}`);
        args.logLevel = l as LogLevel;
        break;
      }
      case '-h':
      case '--help':
        args.help = true;
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  return args;
}
