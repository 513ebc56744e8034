// A kubeconfig for the lab API server: plain HTTP, a placeholder token the server ignores.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface KubeconfigOptions {
  /** Name of the cluster, user and context (default "fast-lab"). */
  name?: string;
  /** Namespace of the context (default "default"). */
  namespace?: string;
}

/** The kubeconfig text (YAML) for a server URL such as http://127.0.0.1:6443. */
export function kubeconfigFor(url: string, options: KubeconfigOptions = {}): string {
  const name = JSON.stringify(options.name ?? 'fast-lab');
  const namespace = JSON.stringify(options.namespace ?? 'default');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${JSON.stringify(url)}`,
    // @kubernetes/client-node 2.x refuses plain http unless TLS verification is off.
    ...(url.startsWith('http:') ? ['    insecure-skip-tls-verify: true'] : []),
    'users:',
    `- name: ${name}`,
    '  user:',
    '    token: "fast-lab"',
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}`,
    `    namespace: ${namespace}`,
    `current-context: ${name}`,
    'preferences: {}',
    '',
  ].join('\n');
}

/** Writes the kubeconfig (mode 0600, directories created) and returns its path. */
export function writeKubeconfig(file: string, url: string, options: KubeconfigOptions = {}): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, kubeconfigFor(url, options), { mode: 0o600 });
  return file;
}
