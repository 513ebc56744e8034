// Address management without Kubernetes: pools from the agent's configuration file,
// allocations kept in a state file on the node (written atomically on every change),
// so a single host with containerd, podman or Nomad can use Fast.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { validatePools, readyCondition, type PoolValidation } from '../../model/ipam/pool.js';
import { PoolAllocator, type AllocationRecord } from '../../model/ipam/allocator.js';
import { formatIp } from '../../model/ipam/address.js';
import { CniError, FastErrorCode } from '../../model/cni/errors.js';
import type { AgentConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { IpamBackend, AddressRequest, GrantedAddress, OwnedAddress, PoolUsage } from './backend.js';

interface PoolState {
  validation: PoolValidation;
  allocator?: PoolAllocator;
}

export class StandaloneIpam implements IpamBackend {
  private readonly pools = new Map<string, PoolState>();
  private readonly stateFile: string;

  constructor(private readonly config: AgentConfig, private readonly log: Logger, now: () => number = Date.now) {
    this.stateFile = path.join(config.stateDir, 'ipam-allocations.json');
    const validations = validatePools(config.pools.map((p) => ({ name: p.name, spec: { subnet: p.subnet, ips: p.ips } })));
    for (const [name, validation] of validations) {
      const allocator = validation.ok ? new PoolAllocator(validation.pool, { cooldownMs: config.releaseCooldownSeconds * 1000, now }) : undefined;
      if (!validation.ok) log.warn('pool is not usable', { pool: name, ...readyCondition(validation) });
      this.pools.set(name, { validation, allocator });
    }
    this.restore();
  }

  private restore(): void {
    let records: AllocationRecord[] = [];
    try {
      records = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as AllocationRecord[];
    } catch {
      return; // first start
    }
    for (const [name, state] of this.pools) {
      const report = state.allocator?.restore(records.filter((r) => r.pool === name));
      for (const r of report?.rejected ?? []) this.log.warn('dropped a stored allocation', { pool: name, address: r.record.address, reason: r.reason, message: r.message });
    }
  }

  private persist(): void {
    const records = [...this.pools.values()].flatMap((p) => p.allocator ? [...p.allocator.records(), ...p.allocator.coolingRecords()] : []);
    const tmp = `${this.stateFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(records));
    fs.renameSync(tmp, this.stateFile);
  }

  private candidates(req: AddressRequest): string[] {
    if (req.pools && req.pools.length > 0) return req.pools;
    if (this.pools.has(this.config.defaultPool)) return [this.config.defaultPool];
    return [...this.pools.keys()];
  }

  async allocate(req: AddressRequest): Promise<GrantedAddress[]> {
    const exhausted: string[] = [];
    for (const name of this.candidates(req)) {
      const state = this.pools.get(name);
      if (!state) throw new CniError(FastErrorCode.NoPoolForPod, `pool ${name} does not exist`, `configured pools: ${[...this.pools.keys()].join(', ')}`);
      if (!state.allocator || !state.validation.ok) {
        throw new CniError(FastErrorCode.NoPoolForPod, `pool ${name} is not usable`, readyCondition(state.validation).message);
      }
      const result = state.allocator.allocate({
        node: req.node, podNamespace: req.pod?.namespace ?? '', podName: req.pod?.name ?? '', podUID: req.pod?.uid ?? '',
        containerID: req.containerId, interface: req.ifName,
      });
      if (result.ok) {
        if (!result.reused) this.persist();
        return [{ address: result.record.address, pool: name, gateway: formatIp(state.validation.pool.gateway) }];
      }
      if (result.error.code !== 'Exhausted' && result.error.code !== 'Cooling') throw new CniError(FastErrorCode.Internal, result.error.message);
      const c = state.allocator.counts();
      exhausted.push(`pool ${name} has no free address (${c.allocated} of ${c.total} allocated${c.cooling ? `, ${c.cooling} cooling down` : ''})`);
    }
    throw new CniError(FastErrorCode.PoolExhausted, exhausted.join('; '), 'the pod starts once an address is released');
  }

  async release(containerId: string, ifName: string): Promise<number> {
    let n = 0;
    for (const state of this.pools.values()) if (state.allocator?.releaseByContainer(containerId, ifName)) n++;
    if (n > 0) this.persist();
    return n;
  }

  async owned(): Promise<OwnedAddress[]> {
    return [...this.pools.values()].flatMap((p) => p.allocator?.records() ?? []).map((r) => ({ containerId: r.containerID, ifName: r.interface, address: r.address, pool: r.pool }));
  }

  async usage(): Promise<PoolUsage[]> {
    return [...this.pools.entries()].map(([name, p]) => {
      const c = p.allocator?.counts();
      return { name, total: Number(c?.total ?? 0n), allocated: c?.allocated ?? 0, cooling: c?.cooling ?? 0, ready: p.validation.ok, message: readyCondition(p.validation).message };
    });
  }
}
