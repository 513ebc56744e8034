// lab-kubelet: one per lab node, inside the node's network namespace.
//   node dist/src/lab/kubelet/main.js --node N --node-ip IP --kubeconfig K
//        --cni-conf-dir DIR --cni-bin-dir DIR[:DIR] --state-dir DIR
import '../../k8s/node-compat.js';
import { CoreV1Api, CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../k8s/kubeconfig.js';
import { ResilientInformer } from '../../k8s/resilient-informer.js';
import { asPlainJson } from '../controllers/informers.js';
import { createLogger } from '../../agent/log.js';
import { makeApiClient } from '../../k8s/api-client.js';
import { LabKubelet } from './kubelet.js';
import { registerNode, postStatus, renewLease } from './node-registration.js';

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`missing ${name}`);
  return v;
}

const HEARTBEAT_MS = 10_000;

async function main(): Promise<void> {
  const nodeName = arg('--node');
  const nodeIp = arg('--node-ip');
  const log = createLogger('info', { component: 'lab-kubelet', node: nodeName });
  const kc = loadKubeConfig({ path: arg('--kubeconfig') });
  const core = makeApiClient(kc, CoreV1Api);
  const coord = makeApiClient(kc, CoordinationV1Api);

  await retryForever(() => registerNode(core, { name: nodeName, ip: nodeIp }), log, 'register node');
  const heartbeat = setInterval(() => {
    void postStatus(core, { name: nodeName, ip: nodeIp }).catch((e: Error) => log.warn('node status failed', { err: e.message }));
    void renewLease(coord, nodeName).catch((e: Error) => log.warn('lease renew failed', { err: e.message }));
  }, HEARTBEAT_MS);

  const kubelet = new LabKubelet(core, {
    nodeName, nodeIp, cniConfDir: arg('--cni-conf-dir'), cniBinDirs: arg('--cni-bin-dir').split(':'), stateDir: arg('--state-dir'), netnsPrefix: arg('--netns-prefix'),
  }, log);
  const pods = new ResilientInformer<V1Pod>({
    kubeConfig: kc, name: 'pods', path: '/api/v1/pods', fieldSelector: `spec.nodeName=${nodeName}`,
    list: () => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` }), transform: asPlainJson, log,
  });
  pods.on('add', (p: V1Pod) => kubelet.podChanged(p));
  pods.on('update', (p: V1Pod) => kubelet.podChanged(p));
  pods.on('delete', (p: V1Pod) => kubelet.podDeleted(p));
  await pods.start();
  await pods.waitForSync();
  kubelet.resync([...pods.list()]);
  log.info('lab kubelet running', { nodeIp });

  const stop = () => {
    clearInterval(heartbeat);
    void pods.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function retryForever(fn: () => Promise<void>, log: ReturnType<typeof createLogger>, what: string): Promise<void> {
  for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await fn();
    } catch (err) {
      log.warn(`${what} failed; retrying`, { err: (err as Error).message, retryInMs: delay });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

void main().catch((err: Error) => {
  process.stderr.write(JSON.stringify({ level: 'error', msg: 'lab kubelet failed', err: err.message }) + '\n');
  process.exit(1);
});
