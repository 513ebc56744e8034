// An eBPF object file in two stages, as cilium/ebpf separates them: a parsed spec
// (what the ELF declares, no kernel involved) and a loaded object (maps adopted
// from or pinned to bpffs, programs verified and holding file descriptors).
import * as path from 'node:path';
import { libbpf, check, checkPtr, type Handle } from './libbpf.js';
import { BpfMap } from './bpf-map.js';

export interface MapSpec {
  name: string;
  keySize: number;
  valueSize: number;
}

export interface BpfObjectSpec {
  file: string;
  maps: MapSpec[];
  programs: string[];
}

/** Reads what an object declares without loading anything into the kernel. */
export function readObjectSpec(file: string): BpfObjectSpec {
  const obj = checkPtr('bpf_object__open_file', libbpf.objectOpenFile(file, null), file);
  try {
    return { file, maps: listMaps(obj).map((m) => mapSpec(m)), programs: listPrograms(obj).map((p) => libbpf.programName(p) as string) };
  } finally {
    libbpf.objectClose(obj);
  }
}

export class LoadedBpfObject {
  private constructor(
    private obj: Handle,
    readonly file: string,
    readonly maps: Map<string, BpfMap>,
    readonly programFds: Map<string, number>,
  ) {}

  /**
   * Loads the object. Every map whose name starts with one of `pinPrefixes` is pinned
   * by name under `pinDir`: an existing pin with a compatible definition is adopted
   * (its contents survive, which is what keeps established flows alive across an agent
   * restart); otherwise the new map is pinned there after load.
   */
  static load(file: string, pinDir: string, pinPrefixes: string[] = ['fast_']): LoadedBpfObject {
    const obj = checkPtr('bpf_object__open_file', libbpf.objectOpenFile(file, null), file);
    try {
      for (const map of listMaps(obj)) {
        const name = libbpf.mapName(map) as string;
        if (pinPrefixes.some((p) => name.startsWith(p))) {
          check('bpf_map__set_pin_path', libbpf.mapSetPinPath(map, path.join(pinDir, name)), name);
        }
      }
      check('bpf_object__load', libbpf.objectLoad(obj), `${file} (pins in ${pinDir})`);
      const maps = new Map<string, BpfMap>();
      for (const map of listMaps(obj)) maps.set(libbpf.mapName(map) as string, BpfMap.fromFd(libbpf.mapFd(map)));
      const programs = new Map<string, number>();
      for (const prog of listPrograms(obj)) programs.set(libbpf.programName(prog) as string, libbpf.programFd(prog));
      return new LoadedBpfObject(obj, file, maps, programs);
    } catch (err) {
      libbpf.objectClose(obj);
      throw err;
    }
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new Error(`${this.file} has no map ${name}`);
    return m;
  }

  programFd(name: string): number {
    const fd = this.programFds.get(name);
    if (fd === undefined) throw new Error(`${this.file} has no program ${name}`);
    return fd;
  }

  /** Releases our fds; pinned maps and attached programs stay in the kernel. */
  close(): void {
    if (this.obj) libbpf.objectClose(this.obj);
    this.obj = null;
  }
}

function listMaps(obj: Handle): Handle[] {
  const out: Handle[] = [];
  for (let m = libbpf.objectNextMap(obj, null); m; m = libbpf.objectNextMap(obj, m)) out.push(m);
  return out;
}

function listPrograms(obj: Handle): Handle[] {
  const out: Handle[] = [];
  for (let p = libbpf.objectNextProgram(obj, null); p; p = libbpf.objectNextProgram(obj, p)) out.push(p);
  return out;
}

function mapSpec(map: Handle): MapSpec {
  return { name: libbpf.mapName(map) as string, keySize: libbpf.mapKeySize(map), valueSize: libbpf.mapValueSize(map) };
}
