// In-process rtnetlink for Fast: a NETLINK_ROUTE socket over libc through koffi, the
// message/attribute codec, and the link/address/route/neighbour operations pod wiring needs.
//
// Why hand-written (checked 2026-11-21): no maintained npm package does rtnetlink without a
// native build. `netlink` (0.3.0) is a C++ addon (node-gyp-build), which the agent's rule of
// koffi + system libraries only excludes; `node-rtnetlink` is not on the registry; no pure-JS
// package covers veth-with-peer-in-netns, routes and neighbours. Measured reason to leave
// `ip`: the two processes per ADD, forked from the ~150 MB agent, took ~7 ms of wall time and
// ~5 ms of CPU per pod; these requests take ~1.5 ms for the whole ADD (bench/pod-wiring.ts,
// docs/benchmarks.md; docs/architecture.md "Netlink").
export * from './rtnetlink.js';
export { NetlinkSocket, NetlinkError, describeErrno, withPlace } from './socket.js';
