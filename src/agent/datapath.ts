// The node's eBPF datapath as the agent drives it: load the objects with their maps
// pinned under the node's bpffs directory, attach the pod program to host-side veths,
// and keep the map entries in step with the endpoints.
import * as path from 'node:path';
import { LoadedBpfObject } from '../dataplane/bpf/bpf-object.js';
import { attachTc, detachTc } from '../dataplane/bpf/tc.js';
import { ensureBpffs } from '../dataplane/net/bpffs.js';
import { MAP_NAMES, encodeIp, encodeIfindex, encodeLocalPod, encodeLocalDevice, decodeLocalPod, decodeIp } from '../dataplane/bpf/map-layouts.js';
import type { Endpoint } from './endpoint-store.js';

export const POD_PROGRAM = 'fast_from_pod';

export class NodeDatapath {
  private constructor(private readonly obj: LoadedBpfObject, readonly bpffsDir: string) {}

  static open(bpfDir: string, bpffsDir: string): NodeDatapath {
    ensureBpffs(bpffsDir);
    return new NodeDatapath(LoadedBpfObject.load(path.join(bpfDir, 'fast_pod.o'), bpffsDir), bpffsDir);
  }

  /** Attach first, then publish in the maps: a packet never meets a half-set-up pod. */
  addEndpoint(ep: Endpoint): void {
    attachTc(ep.hostIfindex, 'ingress', this.obj.programFd(POD_PROGRAM));
    this.writeEndpointEntries(ep);
  }

  writeEndpointEntries(ep: Endpoint): void {
    const value = encodeLocalPod({ hostIfindex: ep.hostIfindex, podIfindex: ep.podIfindex, podMac: ep.podMac, hostMac: ep.hostMac, flags: 0 });
    for (const a of ep.addresses) this.obj.map(MAP_NAMES.localPods).update(encodeIp(a.address), value);
    this.obj.map(MAP_NAMES.localDevices).update(encodeIfindex(ep.hostIfindex), encodeLocalDevice({ name: ep.hostIfName, mac: ep.hostMac, kind: 'pod-veth', flags: 0 }));
  }

  /** Re-attaches the current program (atomic replace) to an adopted endpoint. */
  adoptEndpoint(ep: Endpoint): void {
    this.addEndpoint(ep);
  }

  removeEndpoint(ep: Pick<Endpoint, 'addresses' | 'hostIfindex'>): void {
    for (const a of ep.addresses) this.obj.map(MAP_NAMES.localPods).delete(encodeIp(a.address));
    this.obj.map(MAP_NAMES.localDevices).delete(encodeIfindex(ep.hostIfindex));
    detachTc(ep.hostIfindex, 'ingress');
  }

  hasEndpointEntry(address: string, hostIfindex: number): boolean {
    const v = this.obj.map(MAP_NAMES.localPods).lookup(encodeIp(address));
    return !!v && decodeLocalPod(encodeIp(address), v).hostIfindex === hostIfindex;
  }

  /** Removes map entries no endpoint accounts for (a crash between steps). */
  pruneLocalEntries(valid: Endpoint[]): string[] {
    const wanted = new Set(valid.flatMap((e) => e.addresses.map((a) => a.address)));
    const removed: string[] = [];
    const map = this.obj.map(MAP_NAMES.localPods);
    for (const key of map.keys()) {
      const ip = decodeIp(key);
      if (!wanted.has(ip)) {
        map.delete(key);
        removed.push(ip);
      }
    }
    const ifindexes = new Set(valid.map((e) => e.hostIfindex));
    const devs = this.obj.map(MAP_NAMES.localDevices);
    for (const key of devs.keys()) {
      const ifindex = key.readUInt32LE(0);
      if (!ifindexes.has(ifindex) && devs.lookup(key)?.readUInt16LE(6) === 1) devs.delete(key);
    }
    return removed;
  }

  close(): void {
    this.obj.close();
  }
}
