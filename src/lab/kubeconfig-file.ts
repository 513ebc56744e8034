// A kubeconfig for the lab's API server (plain HTTP, no authentication: lab only).
import * as fs from 'node:fs';

export function writeKubeconfig(file: string, server: string): void {
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: fast-lab
  cluster:
    server: ${server}
contexts:
- name: fast-lab
  context:
    cluster: fast-lab
    user: fast-lab
current-context: fast-lab
users:
- name: fast-lab
  user:
    token: fast-lab
`;
  fs.writeFileSync(file, yaml, { mode: 0o600 });
}
