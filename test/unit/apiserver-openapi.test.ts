// /openapi/v2 of the lab API server, as the real kubectl uses it: `kubectl create|apply -f` of a
// `kind: List` validates the items client-side against the v2 document before sending them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startApiServer, writeKubeconfig } from '../../src/lab/apiserver/index.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';

test('kubectl create and apply -f of a `kind: List` work (validated against /openapi/v2)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-openapi-'));
  const server = await startApiServer({ port: 0 });
  t.after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, server.url);
  // Asynchronously: the server answers from this process.
  const kubectl = (args: string[], input: string): Promise<string> => new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}${stderr}`)) : resolve(stdout)));
    child.stdin!.end(input);
  });
  const service = (name: string, port: number) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port }] } });
  const list = (port: number) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service('one', port), service('two', port)] });

  assert.match(await kubectl(['create', '-f', '-'], list(80)), /service\/one created\nservice\/two created/);
  assert.match(await kubectl(['apply', '-f', '-'], list(8080)), /service\/two configured/);
  const client = new RawClient(server.url);
  assert.equal((await client.get('/api/v1/namespaces/default/services/two')).body.spec.ports[0].port, 8080);
  // The document itself: Swagger 2.0 without definitions, in JSON for anyone but kubectl.
  const doc = await client.get('/openapi/v2');
  assert.equal(doc.status, 200);
  assert.deepEqual(doc.body, { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths: {}, definitions: {} });
});
