// startApiServer: the lab's Kubernetes API server on plain HTTP (no TLS, no authentication: it
// listens on loopback for one lab). It wires the store, the server-side controllers (garbage
// collector, namespace/CRD finalizers), optional persistence and the HTTP routes.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ApiStore, type ApiStoreOptions } from './api-store.js';
import {
  aggregatedDiscovery, apiGroup, apiGroupList, apiResourceList, legacyApiVersions, SERVER_VERSION,
} from './discovery.js';
import { resourceNotFound } from './errors.js';
import { GarbageCollector } from './gc.js';
import { handleResourceRequest, type HandlerContext } from './http-handlers.js';
import { sendError, sendJson } from './http-util.js';
import { LifecycleControllers } from './lifecycle.js';
import { aggregatedDiscoveryContentType, negotiateAggregatedDiscovery } from './negotiation.js';
import { acceptsOpenApiV2Protobuf, OPENAPI_V2_PROTOBUF, openApiV2Json, openApiV2Protobuf, openApiV3Document, openApiV3Index } from './openapi.js';
import { loadState, StateSaver } from './persistence.js';
import { route, type Route } from './router.js';
import type { ActiveWatch } from './watch-stream.js';

export interface ApiServerOptions extends ApiStoreOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** File the state is loaded from at start and saved to (with its change logs) after writes. */
  stateFile?: string;
  /** Changes are appended to the state's log at most this long after they are committed (default 20 ms). */
  saveDebounceMs?: number;
  /** Receives one line per request and controller errors (default: silent). */
  log?: (line: string) => void;
}

export interface ApiServer {
  /** http://host:port, what a kubeconfig's `server:` needs. */
  url: string;
  port: number;
  /** The API in-process: same semantics as over HTTP, for lab components in this process. */
  store: ApiStore;
  /** Ends every open watch stream, as a restart of kube-apiserver would (clients must re-watch). */
  dropWatches(): void;
  /**
   * Serves a connection accepted by another listening socket (one made inside another network
   * namespace, see src/lab/netns-proxy.ts) as if this server had accepted it.
   */
  serveConnection(socket: Socket): void;
  /** Ends watches, stops controllers, saves state and closes the listener. */
  close(): Promise<void>;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function serveRoute(
  target: Route,
  ctx: HandlerContext,
  serverAddress: string,
  query: URLSearchParams,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> | void {
  const { registry } = ctx.store;
  switch (target.kind) {
    case 'resource':
      return handleResourceRequest(ctx, target, query, req, res);
    case 'version':
      return sendJson(res, 200, SERVER_VERSION);
    case 'health':
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    case 'legacy-versions':
    case 'group-list': {
      const aggregated = negotiateAggregatedDiscovery(req.headers.accept);
      const legacy = target.kind === 'legacy-versions';
      if (aggregated) {
        return sendJson(res, 200, aggregatedDiscovery(registry, legacy, aggregated), {
          'Content-Type': aggregatedDiscoveryContentType(aggregated),
        });
      }
      return sendJson(res, 200, legacy ? legacyApiVersions(serverAddress) : apiGroupList(registry));
    }
    case 'group': {
      const doc = apiGroup(registry, target.group);
      if (!doc) throw resourceNotFound();
      return sendJson(res, 200, doc);
    }
    case 'resource-list': {
      const doc = apiResourceList(registry, target.group, target.version);
      if (!doc) throw resourceNotFound();
      return sendJson(res, 200, doc);
    }
    case 'openapi-v2':
      if (acceptsOpenApiV2Protobuf(req.headers.accept)) {
        const body = openApiV2Protobuf();
        res.writeHead(200, { 'Content-Type': OPENAPI_V2_PROTOBUF, 'Content-Length': body.length });
        res.end(body);
        return;
      }
      return sendJson(res, 200, openApiV2Json());
    case 'openapi-v3-index':
      return sendJson(res, 200, openApiV3Index(registry));
    case 'openapi-v3-doc': {
      const doc = openApiV3Document(registry, target.groupVersionPath);
      if (!doc) throw resourceNotFound();
      return sendJson(res, 200, doc);
    }
    case 'not-found':
      throw resourceNotFound();
  }
}

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const store = new ApiStore(options);
  if (options.stateFile) loadState(store, options.stateFile);
  const saver = options.stateFile ? new StateSaver(store, options.stateFile, { debounceMs: options.saveDebounceMs }) : undefined;
  const onControllerError = (err: unknown): void => log(`controller error: ${err instanceof Error ? err.stack : String(err)}`);
  const gc = new GarbageCollector(store, onControllerError);
  const lifecycle = new LifecycleControllers(store, onControllerError);
  const activeWatches = new Set<ActiveWatch>();
  const ctx: HandlerContext = { store, activeWatches };
  let serverAddress = `${host}:0`;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://lab.invalid');
    log(`${req.method ?? 'GET'} ${req.url ?? '/'}`);
    const handle = async (): Promise<void> => {
      await serveRoute(route(req.method ?? 'GET', url.pathname, url.searchParams), ctx, serverAddress, url.searchParams, req, res);
    };
    handle().catch((err: unknown) => sendError(res, err));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  serverAddress = `${hostForUrl(host)}:${port}`;

  const dropWatches = (): void => {
    for (const watch of [...activeWatches]) watch.end();
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      dropWatches();
      gc.stop();
      lifecycle.stop();
      await saver?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    })();
    return closing;
  };

  const serveConnection = (socket: Socket): void => {
    server.emit('connection', socket);
  };

  return { url: `http://${serverAddress}`, port, store, dropWatches, serveConnection, close };
}
