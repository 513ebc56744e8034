// Typed API clients (@kubernetes/client-node) that keep their connection to the API server.
//
// The client sends every request with undici's fetch and, for a cluster marked skipTLSVerify
// (which is how the lab's plain-HTTP kubeconfigs are accepted, see allowPlainHttp), builds a new
// undici Agent for each request: every call opens a new TCP connection, and a call costs about
// 1.8 ms of CPU (client and server side). The lab controllers and kubelets make several calls per
// pod, so for http:// servers they plug into the generated client (its `httpApi` option) a
// small HTTP library on node:http with one keep-alive agent: about 0.5 ms per call, one
// connection. The typed API, (de)serialisation, authentication and errors stay the client's.
// https:// servers keep the client's own library (TLS options, proxies), but the same flaw hits
// them: KubeConfig.createDispatcher builds a new undici Agent for every request whenever any TLS
// option is set (a CA, a client certificate, skipTLSVerify), so every call of an agent in a real
// cluster paid a TCP and TLS handshake. (The library caches its https.Agent in createAgent, used
// by watches and exec, but not the dispatcher.) reuseDispatchers makes it build one per distinct
// set of options and reuse it.
import './node-compat.js';
import * as http from 'node:http';
import {
  ResponseContext, ServerConfiguration, createConfiguration, wrapHttpLibrary,
  type ApiConstructor, type ApiType, type HttpLibrary, type KubeConfig, type RequestContext,
} from '@kubernetes/client-node';

/** One keep-alive agent per process: every client of the process shares its connections. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * The request body as bytes with its length. Node sends a DELETE's body without Content-Length
 * (DELETE is not chunked by default), so the server would not read it: the delete options
 * (preconditions, propagationPolicy) were lost and the bytes misread as the next request.
 */
function bodyOf(ctx: RequestContext): { body?: Buffer; headers: Record<string, string> } {
  const raw = ctx.getBody() as string | Buffer | undefined | null;
  const headers = { ...ctx.getHeaders() };
  if (raw === undefined || raw === null || raw === '') return { headers };
  const body = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  headers['Content-Length'] = String(body.length);
  return { body, headers };
}

function send(ctx: RequestContext): Promise<ResponseContext> {
  const { body, headers } = bodyOf(ctx);
  return new Promise((resolve, reject) => {
    const req = http.request(ctx.getUrl(), { method: ctx.getHttpMethod(), headers, agent, signal: ctx.getSignal() }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        resolve(new ResponseContext(res.statusCode ?? 0, headers, {
          text: async () => body.toString('utf8'),
          binary: async () => body,
          stream: () => new ReadableStream<Uint8Array>({ start(c) { c.enqueue(body); c.close(); } }),
        }));
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server closed an idle kept-alive connection as we reused it: the request never
      // reached it, so sending it again on a fresh connection is safe (Node's documented pattern).
      if (req.reusedSocket && err.code === 'ECONNRESET') send(ctx).then(resolve, reject);
      else reject(err);
    });
    req.end(body);
  });
}

const keepAliveLibrary: HttpLibrary = wrapHttpLibrary({ send });

/** kc.makeApiClient(type) whose calls share kept-alive connections (http:// and https://). */
export function makeApiClient<T extends ApiType>(kc: KubeConfig, apiClientType: ApiConstructor<T>): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server.startsWith('http://')) return reuseDispatchers(kc).makeApiClient(apiClientType);
  return new apiClientType(createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    httpApi: keepAliveLibrary,
  }));
}

type DispatcherFactory = (cluster: unknown, agentOptions: unknown) => unknown;
interface DispatcherInternals {
  createDispatcher?: DispatcherFactory;
  createDispatcherOptions?: DispatcherFactory;
}
const patched = new WeakSet<KubeConfig>();

/**
 * Memoises the KubeConfig's (private) createDispatcher by the options it would build the
 * dispatcher from, so one undici Agent, with its connection pool, serves every request made with
 * the same cluster, user and TLS settings. If a future client-node drops either method, the
 * client's own behaviour is kept (correct, only slower); test/unit/k8s-api-client.test.ts counts
 * the connections and says so.
 */
export function reuseDispatchers(kc: KubeConfig): KubeConfig {
  const internals = kc as unknown as DispatcherInternals;
  const build = internals.createDispatcher;
  const describe = internals.createDispatcherOptions;
  if (patched.has(kc) || typeof build !== 'function' || typeof describe !== 'function') return kc;
  const cache = new Map<string, unknown>();
  internals.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify(describe.call(kc, cluster, agentOptions));
    if (!cache.has(key)) cache.set(key, build.call(kc, cluster, agentOptions));
    return cache.get(key);
  };
  patched.add(kc);
  return kc;
}
