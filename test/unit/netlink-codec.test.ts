// The rtnetlink codec on byte layouts written out by hand from the kernel's uapi headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as c from '../../src/dataplane/net/netlink/constants.js';
import {
  align4, attrString, attrU32, ifinfomsg, nla, nlaNested, nlaString, nlaU32, nlmsg, parseAttrs, parseDone, parseError, parseMessages,
  NetlinkParseError,
} from '../../src/dataplane/net/netlink/message.js';
import { decodeLink, ipBytes, macBytes } from '../../src/dataplane/net/netlink/rtnetlink.js';
import { NetlinkError, describeErrno } from '../../src/dataplane/net/netlink/socket.js';

const hex = (b: Buffer) => b.toString('hex');

test('align4 rounds up to the next multiple of 4', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 8, 9].map(align4), [0, 4, 4, 4, 4, 8, 8, 12]);
});

test('an attribute is length, type, payload, zero padding to 4; the length excludes the padding', () => {
  assert.equal(hex(nla(3, Buffer.from('ab'))), '0600' + '0300' + '6162' + '0000');
  assert.equal(hex(nlaString(c.IFLA_IFNAME, 'eth0')), '0900' + '0300' + '6574683000' + '000000');
  assert.equal(hex(nlaU32(c.IFLA_MTU, 1450)), '0800' + '0400' + 'aa050000');
  assert.equal(hex(nla(7, Buffer.alloc(0))), '0400' + '0700');
});

test('a nested attribute carries NLA_F_NESTED and its children padded inside', () => {
  const inner = nlaString(c.IFLA_INFO_KIND, 'veth'); // 4 + 5 -> 12 with padding
  const outer = nlaNested(c.IFLA_LINKINFO, [inner, nlaU32(9, 1)]);
  assert.equal(outer.readUInt16LE(0), 4 + 12 + 8);
  assert.equal(outer.readUInt16LE(2), c.IFLA_LINKINFO | c.NLA_F_NESTED);
  const parsed = parseAttrs(outer);
  assert.deepEqual([...parsed.keys()], [c.IFLA_LINKINFO]); // the flag is masked off when reading
  const children = parseAttrs(parsed.get(c.IFLA_LINKINFO)!);
  assert.equal(attrString(children.get(c.IFLA_INFO_KIND)), 'veth');
  assert.equal(attrU32(children.get(9)), 1);
});

test('a message header holds the total length, type, flags, sequence and port 0', () => {
  const m = nlmsg(c.RTM_GETLINK, c.NLM_F_REQUEST | c.NLM_F_ACK, 0xdeadbeef, ifinfomsg({ index: 7, flags: c.IFF_UP, change: c.IFF_UP }));
  assert.equal(hex(m.subarray(0, 16)), '20000000' + '1200' + '0500' + 'efbeadde' + '00000000');
  assert.equal(hex(m.subarray(16)), '00' + '00' + '0000' + '07000000' + '01000000' + '01000000');
});

test('several messages in one datagram are split at their aligned lengths', () => {
  const a = nlmsg(c.RTM_NEWLINK, c.NLM_F_MULTI, 5, Buffer.concat([ifinfomsg({ index: 1 }), nlaString(c.IFLA_IFNAME, 'lo')]));
  const b = nlmsg(c.RTM_NEWLINK, c.NLM_F_MULTI, 5, Buffer.concat([ifinfomsg({ index: 2 }), nlaString(c.IFLA_IFNAME, 'eth0')]));
  const done = nlmsg(c.NLMSG_DONE, c.NLM_F_MULTI, 5, Buffer.alloc(4));
  const msgs = parseMessages(Buffer.concat([a, b, done]));
  assert.deepEqual(msgs.map((m) => [m.type, m.flags, m.seq]), [[c.RTM_NEWLINK, c.NLM_F_MULTI, 5], [c.RTM_NEWLINK, c.NLM_F_MULTI, 5], [c.NLMSG_DONE, c.NLM_F_MULTI, 5]]);
  assert.deepEqual(msgs.slice(0, 2).map((m) => decodeLink(m).ifname), ['lo', 'eth0']);
  assert.equal(parseDone(msgs[2]!), 0);
});

test('NLMSG_DONE with a negative int reports that errno', () => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(-16, 0);
  assert.equal(parseDone(parseMessages(nlmsg(c.NLMSG_DONE, c.NLM_F_MULTI, 1, b))[0]!), 16);
});

test('lengths that run past the buffer are refused, not read', () => {
  const m = nlmsg(c.RTM_NEWLINK, 0, 1, Buffer.alloc(16));
  assert.throws(() => parseMessages(m.subarray(0, 20)), NetlinkParseError);
  const bad = Buffer.from(m);
  bad.writeUInt32LE(8, 0); // shorter than a header
  assert.throws(() => parseMessages(bad), NetlinkParseError);
  assert.throws(() => parseAttrs(Buffer.from('0900030061', 'hex')), NetlinkParseError);
});

function errorMessage(errno: number, flags: number, echoed: Buffer, tlvs: Buffer[] = []): Buffer {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-errno, 0);
  return nlmsg(c.NLMSG_ERROR, flags, 9, Buffer.concat([e, echoed, ...tlvs]));
}

test('a plain ACK is errno 0', () => {
  const req = nlmsg(c.RTM_NEWLINK, c.NLM_F_REQUEST | c.NLM_F_ACK, 9, ifinfomsg());
  assert.deepEqual(parseError(parseMessages(errorMessage(0, c.NLM_F_CAPPED, req.subarray(0, 16)))[0]!), { errno: 0 });
});

test('an error ACK gives the errno and the extended-ACK text after a capped echo', () => {
  const req = nlmsg(c.RTM_NEWLINK, c.NLM_F_REQUEST | c.NLM_F_ACK, 9, Buffer.concat([ifinfomsg(), nlaString(c.IFLA_IFNAME, 'x')]));
  const m = errorMessage(17, c.NLM_F_CAPPED | c.NLM_F_ACK_TLVS, req.subarray(0, 16), [nlaString(c.NLMSGERR_ATTR_MSG, 'Device already exists')]);
  assert.deepEqual(parseError(parseMessages(m)[0]!), { errno: 17, extack: 'Device already exists' });
});

test('an error ACK with the whole request echoed finds the text after the request', () => {
  const req = nlmsg(c.RTM_NEWLINK, c.NLM_F_REQUEST | c.NLM_F_ACK, 9, Buffer.concat([ifinfomsg(), nlaString(c.IFLA_IFNAME, 'abcde')]));
  const m = errorMessage(22, c.NLM_F_ACK_TLVS, req, [nlaString(c.NLMSGERR_ATTR_MSG, 'bad MTU')]);
  assert.deepEqual(parseError(parseMessages(m)[0]!), { errno: 22, extack: 'bad MTU' });
});

test('NetlinkError names the operation, the message and the errno name', () => {
  const e = new NetlinkError('creating veth fst1 (peer eth0 in /var/run/netns/x)', 17, 'Device already exists');
  assert.equal(e.code, 'EEXIST');
  assert.equal(e.message, 'creating veth fst1 (peer eth0 in /var/run/netns/x): File exists (EEXIST): Device already exists');
  assert.equal(describeErrno(19), 'No such device (ENODEV)');
});

test('a link answer decodes to name, MAC, MTU, flags, operstate and kind', () => {
  const linkinfo = nlaNested(c.IFLA_LINKINFO, [nlaString(c.IFLA_INFO_KIND, 'veth')]);
  const body = Buffer.concat([
    ifinfomsg({ index: 42, flags: c.IFF_UP | c.IFF_BROADCAST | c.IFF_MULTICAST | c.IFF_LOWER_UP }),
    nlaString(c.IFLA_IFNAME, 'fst0123456789a'), nlaU32(c.IFLA_MTU, 1450), nla(c.IFLA_ADDRESS, macBytes('02:ab:cd:ef:00:01')),
    nla(c.IFLA_OPERSTATE, Buffer.from([6])), linkinfo,
  ]);
  assert.deepEqual(decodeLink(parseMessages(nlmsg(c.RTM_NEWLINK, 0, 1, body))[0]!), {
    ifindex: 42, ifname: 'fst0123456789a', address: '02:ab:cd:ef:00:01', mtu: 1450,
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], operstate: 'UP', kind: 'veth',
  });
});

test('addresses and MACs encode in network order; bad ones are refused', () => {
  assert.deepEqual(ipBytes('169.254.1.1'), { family: c.AF_INET, bytes: Buffer.from([169, 254, 1, 1]) });
  assert.deepEqual(ipBytes('fe80::1'), { family: c.AF_INET6, bytes: Buffer.from('fe800000000000000000000000000001', 'hex') });
  assert.equal(hex(macBytes('02:00:5e:10:00:ff')), '02005e1000ff');
  assert.throws(() => macBytes('02:00:5e:10:00'), /not a MAC address/);
  assert.throws(() => ipBytes('10.0.0'), /not a valid IP address/);
});
