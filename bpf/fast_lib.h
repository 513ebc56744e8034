/* Helpers shared by Fast's tc programs (fast_pod.c, fast_net.c). */
#ifndef FAST_LIB_H
#define FAST_LIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fast_maps.h"

#define FAST_AF_INET 2
#define FAST_AF_INET6 10
#define FAST_EPROTO 71
#define FAST_TUNNEL_TTL 64

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

/* A packet from a local pod to a pod (or node) on another node, TTL already decremented.
 *  - overlay: tunnel key (VNI, remote node), inner MACs for the receiving fast_vxlan, and
 *    out through fast_vxlan (which encapsulates; its egress program sees the key and
 *    leaves the packet alone);
 *  - native: out of the uplink with the remote node as next hop; the kernel's neighbour
 *    table fills the MACs and resolves (queueing, not dropping) when the entry is new. */
static __always_inline int forward_to_remote(struct __sk_buff *skb, const struct fast_config *cfg,
					     const struct fast_cluster_pod *remote)
{
	if (cfg->mode == FAST_MODE_OVERLAY) {
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
