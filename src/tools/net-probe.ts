// A tiny TCP prober for tests and the lab (pods run no images, so they get this):
//   net-probe serve PORT          echo server; answers HTTP GET with "fast ok <hostname-ish>"
//   net-probe connect HOST PORT   sends a line, expects it echoed; exit 0 on success
//   net-probe send HOST PORT BYTES  streams BYTES bytes and checks the echoed count
import * as net from 'node:net';

function serve(port: number): void {
  const server = net.createServer((c) => {
    c.on('error', () => undefined);
    c.once('data', (first) => {
      if (first.toString('latin1').startsWith('GET ')) {
        const body = `fast ok ${process.env.FAST_POD_NAME ?? ''}\n`;
        c.end(`HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        return;
      }
      c.write(first);
      c.pipe(c);
    });
  });
  server.listen(port, '::', () => process.stdout.write(`listening ${port}\n`));
}

function connect(host: string, port: number, bytes: number): void {
  const c = net.createConnection({ host, port, timeout: 5000 });
  const payload = bytes > 0 ? Buffer.alloc(bytes, 0x61) : Buffer.from('fast-probe\n');
  let got = 0;
  c.on('connect', () => c.end(payload));
  c.on('data', (d) => (got += d.length));
  c.on('timeout', () => fail(`timeout talking to ${host}:${port}`));
  c.on('error', (e) => fail(e.message));
  c.on('close', () => {
    if (got !== payload.length) fail(`echo mismatch: sent ${payload.length}, got ${got}`);
    process.stdout.write(`ok ${got}\n`);
    process.exit(0);
  });
}

function fail(msg: string): never {
  process.stderr.write(`net-probe: ${msg}\n`);
  process.exit(1);
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'serve') serve(Number(a));
else if (mode === 'connect') connect(a!, Number(b), 0);
else if (mode === 'send') connect(a!, Number(b), Number(c));
else fail('usage: net-probe serve PORT | connect HOST PORT | send HOST PORT BYTES');
