/* Helpers shared by Fast's tc programs (fast_pod.c, fast_net.c). */
#ifndef FAST_LIB_H
#define FAST_LIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fast_maps.h"

#define FAST_AF_INET 2
#define FAST_AF_INET6 10
#define FAST_EPROTO 71
#define FAST_TUNNEL_TTL 64

/* Not in older UAPI headers; kernel 6.3+ takes them (6.18 here). */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif
/* Clears the tunnel's GSO state on decapsulation; bpf-next (2026), newer than 6.18, which
 * refuses it with -EINVAL. Same value as the kernel's UAPI. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L4_UDP
#define BPF_F_ADJ_ROOM_DECAP_L4_UDP (1ULL << 10)
#endif

#define VXLAN_FLAG_VNI 0x08000000 /* the I flag, the only one set by the VXLAN device */

struct vxlan_wire {
	__be32 flags;
	__be32 vni; /* VNI << 8 */
};

/* Outer IPv4 (no options) + UDP + VXLAN + inner Ethernet: what encapsulation adds
 * after the outer Ethernet header and decapsulation removes. */
#define VXLAN_V4_OUTER (sizeof(struct iphdr) + sizeof(struct udphdr) + \
			sizeof(struct vxlan_wire) + ETH_HLEN)

static __always_inline void ipv4_key(struct fast_ip *k, __u32 addr)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], &addr, 4);
}

static __always_inline int is_v4_mapped(const struct fast_ip *k)
{
	__u32 w0, w1, w2;

	__builtin_memcpy(&w0, &k->addr[0], 4);
	__builtin_memcpy(&w1, &k->addr[4], 4);
	__builtin_memcpy(&w2, &k->addr[8], 4);
	return (w0 | w1) == 0 && w2 == bpf_htonl(0x0000ffff);
}

static __always_inline __u32 v4_of(const struct fast_ip *k)
{
	__u32 a;

	__builtin_memcpy(&a, &k->addr[12], 4);
	return a;
}

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* Rewrite the Ethernet header as a router would (pod_mac and host_mac are adjacent in
 * the map value: destination then source, one store) and hand the packet to the peer
 * (the pod's eth0) of the target's host-side veth. */
static __always_inline int redirect_to_local_pod(struct __sk_buff *skb,
						 struct fast_local_pod *dst, __u32 stat)
{
	if (bpf_skb_store_bytes(skb, 0, dst->pod_mac, 12, 0) < 0)
		return TC_ACT_SHOT;
	fast_count(stat);
	return bpf_redirect_peer(dst->host_ifindex, 0);
}

/* Packet pointers are invalid after the checksum helper, so the TTL is read first. */
static __always_inline int decrement_ttl_v4(struct __sk_buff *skb, __u8 ttl)
{
	__u32 csum_off = ETH_HLEN + __builtin_offsetof(struct iphdr, check);
	__u32 ttl_off = ETH_HLEN + __builtin_offsetof(struct iphdr, ttl);
	__u8 new_ttl;

	if (ttl <= 1)
		return -1;
	new_ttl = ttl - 1;
	/* TTL is the high byte of the 16-bit word it shares with the protocol. */
	bpf_l3_csum_replace(skb, csum_off, bpf_htons((__u16)ttl << 8),
			    bpf_htons((__u16)new_ttl << 8), 2);
	bpf_skb_store_bytes(skb, ttl_off, &new_ttl, 1, 0);
	return 0;
}

static __always_inline int decrement_hop_limit_v6(struct __sk_buff *skb, __u8 hl)
{
	__u8 new_hl;

	if (hl <= 1)
		return -1;
	new_hl = hl - 1;
	bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, hop_limit),
			    &new_hl, 1, 0);
	return 0;
}

/* The tunnel key of a packet for `remote` (a node's underlay address): VNI, outer
 * destination, and this node's address as outer source. IPv4 underlays send a zero UDP
 * checksum (allowed for IPv4, saves computing it); IPv6 ones must checksum. */
static __always_inline int set_tunnel(struct __sk_buff *skb, const struct fast_config *cfg,
				      const struct fast_ip *remote)
{
	struct bpf_tunnel_key key = {};
	__u64 flags;

	key.tunnel_id = cfg->vni;
	key.tunnel_ttl = FAST_TUNNEL_TTL;
	if (is_v4_mapped(remote)) {
		key.remote_ipv4 = bpf_ntohl(v4_of(remote));
		if (is_v4_mapped(&cfg->node_ip))
			key.local_ipv4 = bpf_ntohl(v4_of(&cfg->node_ip));
		flags = BPF_F_ZERO_CSUM_TX;
	} else {
		__builtin_memcpy(key.remote_ipv6, remote->addr, 16);
		if (!is_v4_mapped(&cfg->node_ip))
			__builtin_memcpy(key.local_ipv6, cfg->node_ip.addr, 16);
		flags = BPF_F_TUNINFO_IPV6;
	}
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key), flags);
}

/* Tunnel metadata attached to the packet (either family); 0 when there is some. */
static __always_inline int get_tunnel(struct __sk_buff *skb, struct bpf_tunnel_key *key)
{
	int ret = bpf_skb_get_tunnel_key(skb, key, sizeof(*key), 0);

	if (ret == -FAST_EPROTO)
		ret = bpf_skb_get_tunnel_key(skb, key, sizeof(*key), BPF_F_TUNINFO_IPV6);
	return ret;
}

/* The headers eBPF encapsulation writes after the outer Ethernet header. */
struct vxlan_v4_headers {
	struct iphdr ip;
	struct udphdr udp;
	struct vxlan_wire vx;
	struct ethhdr inner;
};
_Static_assert(__builtin_offsetof(struct vxlan_v4_headers, inner) + ETH_HLEN == VXLAN_V4_OUTER,
	       "the headers are contiguous: one store writes them");

static __always_inline __u16 ipv4_header_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* VXLAN encapsulation in eBPF, for an IPv4 underlay: the pod's frame gets outer
 * IPv4/UDP/VXLAN headers in place (bpf_skb_adjust_room with the encap flags, which also
 * marks a GSO skb as a UDP tunnel for segmentation, by the NIC or the kernel) and leaves
 * by the uplink, whose next hop the kernel resolves (route and neighbour) as
 * bpf_redirect_neigh does in native mode. The same wire format as fast_vxlan: the
 * receiver takes either. Skips vxlan_xmit and the outer packet's second trip through the
 * node's stack (iptunnel_xmit -> ip_local_out). Returns -1 where the kernel device must
 * do it instead (the packet is then unchanged): an skb already encapsulated (adjust_room
 * refuses to nest), no headroom to grow. */
static __always_inline int encap_vxlan_v4(struct __sk_buff *skb, const struct fast_config *cfg,
					  const struct fast_cluster_pod *remote, __be16 inner_proto,
					  __u8 inner_tos)
{
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
		      BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) |
		      BPF_F_ADJ_ROOM_ENCAP_L2_ETH;
	__be16 outer_proto = bpf_htons(ETH_P_IP);
	struct vxlan_v4_headers h = {};
	__u32 len = skb->len + VXLAN_V4_OUTER - ETH_HLEN; /* outer IP datagram */
	__u32 hash = bpf_get_hash_recalc(skb);

	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tos = inner_tos & ~0x3; /* DSCP kept; ECN not (decapsulation does not propagate CE) */
	h.ip.tot_len = bpf_htons(len);
	h.ip.id = (__u16)bpf_get_prandom_u32(); /* DF clear, as fast_vxlan sends: IDs must vary */
	h.ip.ttl = FAST_TUNNEL_TTL;
	h.ip.protocol = IPPROTO_UDP;
	h.ip.saddr = v4_of(&cfg->node_ip);
	h.ip.daddr = v4_of(&remote->node_ip);
	h.ip.check = ipv4_header_csum(&h.ip);
	/* Source port from the inner flow's hash, in the upper half of the port range as the
	 * kernel's udp_flow_src_port picks it: ECMP and RSS on the underlay spread flows. */
	h.udp.source = bpf_htons((__u16)(((__u64)hash * 32768) >> 32) + 32768);
	h.udp.dest = bpf_htons(cfg->port);
	h.udp.len = bpf_htons(len - sizeof(struct iphdr));
	h.udp.check = 0; /* allowed over IPv4; the VXLAN device sends none either */
	h.vx.flags = bpf_htonl(VXLAN_FLAG_VNI);
	h.vx.vni = bpf_htonl(cfg->vni << 8);
	__builtin_memcpy(h.inner.h_dest, cfg->overlay_mac, 6);
	__builtin_memcpy(h.inner.h_source, cfg->overlay_src_mac, 6);
	h.inner.h_proto = inner_proto;

	if (len > 0xffff || bpf_skb_adjust_room(skb, VXLAN_V4_OUTER, BPF_ADJ_ROOM_MAC, flags) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, VXLAN_V4_OUTER, 0) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &outer_proto, 2, 0) < 0)
		return TC_ACT_SHOT; /* half-done: no longer the pod's packet */
	fast_count(FAST_STAT_REDIRECT_TUNNEL);
	fast_count(FAST_STAT_ENCAP_EBPF);
	return bpf_redirect_neigh(cfg->uplink_ifindex, 0, 0, 0);
}

/* A packet from a local pod to a pod (or node) on another node, TTL already decremented.
 *  - overlay: encapsulated here and sent out of the uplink when the config asks for it
 *    (FAST_CFG_F_EBPF_ENCAP, IPv4 underlay); otherwise, or when eBPF cannot take it, the
 *    tunnel key (VNI, remote node), inner MACs for the receiving fast_vxlan, and out
 *    through fast_vxlan (which encapsulates; its egress program sees the key and leaves
 *    the packet alone);
 *  - native: out of the uplink with the remote node as next hop; the kernel's neighbour
 *    table fills the MACs and resolves (queueing, not dropping) when the entry is new. */
static __always_inline int forward_to_remote(struct __sk_buff *skb, const struct fast_config *cfg,
					     const struct fast_cluster_pod *remote, __be16 inner_proto,
					     __u8 inner_tos)
{
	if (cfg->mode == FAST_MODE_OVERLAY) {
		if ((cfg->flags & FAST_CFG_F_EBPF_ENCAP) && is_v4_mapped(&remote->node_ip) &&
		    is_v4_mapped(&cfg->node_ip)) {
			int ret = encap_vxlan_v4(skb, cfg, remote, inner_proto, inner_tos);

			if (ret >= 0)
				return ret;
		}
		if (set_tunnel(skb, cfg, &remote->node_ip) < 0 ||
		    bpf_skb_store_bytes(skb, 0, cfg->overlay_mac, 12, 0) < 0) {
			fast_count(FAST_STAT_DROP_TUNNEL_KEY);
			return TC_ACT_SHOT;
		}
		fast_count(FAST_STAT_REDIRECT_TUNNEL);
		return bpf_redirect(cfg->overlay_ifindex, 0);
	}
	if (cfg->mode == FAST_MODE_NATIVE) {
		struct bpf_redir_neigh nh = {};

		if (is_v4_mapped(&remote->node_ip)) {
			nh.nh_family = FAST_AF_INET;
			nh.ipv4_nh = v4_of(&remote->node_ip);
		} else {
			nh.nh_family = FAST_AF_INET6;
			__builtin_memcpy(nh.ipv6_nh, remote->node_ip.addr, 16);
		}
		fast_count(FAST_STAT_REDIRECT_NEIGH);
		return bpf_redirect_neigh(cfg->uplink_ifindex, &nh, sizeof(nh), 0);
	}
	fast_count(FAST_STAT_PASS_STACK);
	return TC_ACT_OK;
}

/* A packet that arrived from another node (decapsulated by fast_vxlan, or routed to us
 * natively on the uplink): one for a local pod goes straight into it; everything else
 * (the node itself, replies to masqueraded flows, ...) goes to the host stack. */
static __always_inline int deliver_from_net(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct fast_local_pod *target;
	struct fast_ip dst;

	/* Frames for another host (flooded by a switch) are the stack's to drop. */
	if ((void *)(eth + 1) > data_end || skb->pkt_type != PACKET_HOST)
		goto pass;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto pass;
		ipv4_key(&dst, ip->daddr);
		target = bpf_map_lookup_elem(&fast_lpod_v1, &dst);
		if (!target || decrement_ttl_v4(skb, ip->ttl) < 0)
			goto pass;
		return redirect_to_local_pod(skb, target, FAST_STAT_DELIVER_FROM_NET);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto pass;
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
		target = bpf_map_lookup_elem(&fast_lpod_v1, &dst);
		if (!target || decrement_hop_limit_v6(skb, ip6->hop_limit) < 0)
			goto pass;
		return redirect_to_local_pod(skb, target, FAST_STAT_DELIVER_FROM_NET);
	}
pass:
	fast_count(FAST_STAT_PASS_FROM_NET);
	return TC_ACT_OK;
}

#endif
