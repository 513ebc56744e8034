// What the agent needs from address management, whichever source backs it:
// standalone pools from the configuration file, or Ips pools in Kubernetes.
export interface PodRef {
  namespace?: string;
  name?: string;
  uid?: string;
}

export interface AddressRequest {
  containerId: string;
  ifName: string;
  node: string;
  pod?: PodRef;
  /** Pools named by the network configuration's `ipam.pool`, tried in order. */
  pools?: string[];
}

export interface GrantedAddress {
  address: string;
  pool: string;
  /** The pool's subnet gateway (first address unless configured), informational. */
  gateway: string;
}

export interface OwnedAddress {
  containerId: string;
  ifName: string;
  address: string;
  pool: string;
}

export interface PoolUsage {
  name: string;
  total: number;
  allocated: number;
  cooling: number;
  ready: boolean;
  message?: string;
}

export interface IpamBackend {
  /** Idempotent per (containerId, ifName); throws a CniError when no address can be had. */
  allocate(req: AddressRequest): Promise<GrantedAddress[]>;
  /** Idempotent; returns how many addresses were released. */
  release(containerId: string, ifName: string): Promise<number>;
  owned(): Promise<OwnedAddress[]>;
  usage(): Promise<PoolUsage[]>;
  close?(): Promise<void>;
}
