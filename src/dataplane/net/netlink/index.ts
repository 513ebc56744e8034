// In-process rtnetlink for Fast: a NETLINK_ROUTE socket over libc through koffi, the
// message/attribute codec, and the link/address/route/neighbour operations pod wiring needs.
//
// Why hand-written: no maintained npm package does rtnetlink without a native build. The
// `netlink` package (0.3.0, last published 2024-12) is a C++ addon (node-gyp-build), which
// the agent's no-native-build rule (koffi + system libraries only) excludes; no pure-JS
// package on the registry covers veth-with-peer-in-netns, routes and neighbours. Spawning
// `ip` cost ~3 ms per process here (two per ADD); these requests cost tens of microseconds
// each (docs/benchmarks.md, docs/architecture.md "Netlink").
export * from './rtnetlink.js';
export { NetlinkSocket, NetlinkError, describeErrno, withPlace } from './socket.js';
