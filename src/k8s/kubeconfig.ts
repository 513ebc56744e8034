// Where a Fast process finds its Kubernetes API: a kubeconfig file when one is named, else the
// in-cluster service account (as a pod), else the client's default lookup ($KUBECONFIG, ~/.kube).
import './node-compat.js';
import * as fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeConfigSource {
  /** A kubeconfig file; wins over everything else. */
  path?: string;
  /** Environment to consult (tests); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** True when this process runs in a pod with a service account (KUBERNETES_SERVICE_HOST + token). */
export function inCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && Boolean(env.KUBERNETES_SERVICE_PORT) && fs.existsSync(SERVICE_ACCOUNT_TOKEN);
}

export function loadKubeConfig(source: KubeConfigSource = {}): KubeConfig {
  const env = source.env ?? process.env;
  const kc = new KubeConfig();
  if (source.path) {
    if (!fs.existsSync(source.path)) throw new Error(`kubeconfig ${source.path} does not exist`);
    kc.loadFromFile(source.path);
  } else if (!env.KUBECONFIG && inCluster(env)) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(`kubeconfig ${source.path ?? env.KUBECONFIG ?? '(default)'} has no current cluster`);
  }
  return allowPlainHttp(kc);
}

/**
 * @kubernetes/client-node refuses an http:// server unless the cluster has skipTLSVerify
 * ("HTTP protocol is not allowed when skipTLSVerify is not set or false"), while kubectl accepts
 * it as is. With plain HTTP there is no certificate to verify, so the flag changes nothing else:
 * set it on such clusters so that a kubeconfig kubectl accepts works here too.
 */
export function allowPlainHttp(kc: KubeConfig): KubeConfig {
  if (!kc.clusters.some((c) => c.server.startsWith('http://') && !c.skipTLSVerify)) return kc;
  const fixed = new KubeConfig();
  fixed.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return fixed;
}

/** A kubeconfig for a plain URL without credentials (the lab API server, tests). */
export function kubeConfigForUrl(server: string, opts: { token?: string; skipTLSVerify?: boolean } = {}): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'cluster', server, skipTLSVerify: opts.skipTLSVerify ?? server.startsWith('http://') }],
    users: [opts.token ? { name: 'user', token: opts.token } : { name: 'user' }],
    contexts: [{ name: 'context', cluster: 'cluster', user: 'user' }],
    currentContext: 'context',
  });
  return kc;
}
