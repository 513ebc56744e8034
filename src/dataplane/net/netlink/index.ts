// In-process rtnetlink for Fast: a NETLINK_ROUTE socket over libc through koffi, the
// message/attribute codec, and the link/address/route/neighbour operations pod wiring needs.
//
// Why hand-written (checked 2026-11-21): no maintained npm package does rtnetlink without a
// native build. `netlink` (0.3.0) is a C++ addon (node-gyp-build), which the agent's rule of
// koffi + system libraries only excludes; `node-rtnetlink` is not on the registry; no pure-JS
// package covers veth-with-peer-in-netns, routes and neighbours. Measured reason to leave
// `ip`: the two processes per ADD took ~10 ms of wall time and ~10 ms of CPU per pod, these
// requests ~1.1 ms (p50) and ~1.3 ms (bench/pod-wiring.ts at load ~5, side by side;
// docs/benchmarks.md; docs/architecture.md "Netlink").
export * from './rtnetlink.js';
export { NetlinkSocket, NetlinkError, describeErrno, withPlace } from './socket.js';
