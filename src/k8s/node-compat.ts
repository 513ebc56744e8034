// Node 20 compatibility for @kubernetes/client-node 2.x. The client depends on undici 8, which
// needs Node >= 22.19: at load time it binds zlib.createZstdDecompress and
// worker_threads.markAsUncloneable, and fetch() calls Promise.withResolvers. None of them exists
// on Node 20, so importing the client throws before any request is made.
//
// This module fills exactly those three gaps (zstd is never negotiated: undici only decodes it
// when a server answers with `content-encoding: zstd`, which kube-apiserver does not do). It must
// be evaluated before the client is: import it first, as a side-effect import, in every entry
// module that (transitively) imports '@kubernetes/client-node':
//
//   import '../k8s/node-compat.js';
//   import { KubeConfig } from '@kubernetes/client-node';
//
// src/k8s/kubeconfig.ts and src/k8s/resilient-informer.ts import it themselves, so importing
// either of them before the client is enough. On Node >= 22.19 it does nothing.
import * as zlib from 'node:zlib';
import * as workerThreads from 'node:worker_threads';

type Mutable = Record<string, unknown>;

function fill(target: object, name: string, value: unknown): void {
  const t = target as Mutable;
  if (typeof t[name] === 'function') return;
  try {
    t[name] = value;
  } catch {
    // Module namespace objects are frozen; the default export (the CJS object) is not.
  }
}

const zstdUnsupported = () => {
  throw new Error('zstd streams need Node >= 22.15');
};

// `import * as` gives the ESM namespace (read-only); undici requires the CJS module object,
// which is the namespace's default export.
const zlibObject = ((zlib as unknown as { default?: object }).default ?? zlib) as object;
const workerThreadsObject = ((workerThreads as unknown as { default?: object }).default ?? workerThreads) as object;

fill(zlibObject, 'createZstdCompress', zstdUnsupported);
fill(zlibObject, 'createZstdDecompress', zstdUnsupported);
fill(workerThreadsObject, 'markAsUncloneable', () => {});
fill(Promise, 'withResolvers', function withResolvers<T>(this: PromiseConstructor) {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new this<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
});

export {};
