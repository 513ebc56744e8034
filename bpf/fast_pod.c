/* tc program on the host-side veth of every pod, ingress direction: it sees every
 * packet the pod sends.
 *
 *  - anti-spoofing: an IPv4/IPv6/ARP packet whose source address or MAC is not the
 *    sending pod's is dropped; other ethertypes are dropped too (a pod has no business
 *    sending them);
 *  - a packet for another pod of this node goes straight into that pod with
 *    bpf_redirect_peer (no host stack, no second veth traversal);
 *  - everything else goes to the host stack (TC_ACT_OK). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_arp.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fast_maps.h"

char LICENSE[] SEC("license") = "GPL";

struct arp_eth_ipv4 {
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline void ipv4_key(struct fast_ip *k, __u32 addr)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], &addr, 4);
}

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* The sender must be the pod that owns this veth, with its own MAC. */
static __always_inline int check_source(struct __sk_buff *skb, struct fast_ip *src,
					const __u8 *src_mac)
{
	struct fast_local_pod *self = bpf_map_lookup_elem(&fast_lpod_v1, src);

	if (!self || self->host_ifindex != skb->ifindex) {
		fast_count(FAST_STAT_DROP_SPOOF_SRC_IP);
		return -1;
	}
	if (!mac_equal(self->pod_mac, src_mac)) {
		fast_count(FAST_STAT_DROP_SPOOF_SRC_MAC);
		return -1;
	}
	return 0;
}

/* Rewrite the Ethernet header as a router would and hand the packet to the peer
 * (the pod's eth0) of the target's host-side veth. */
static __always_inline int redirect_to_local_pod(struct __sk_buff *skb,
						 struct fast_local_pod *dst)
{
	if (bpf_skb_store_bytes(skb, 0, dst->pod_mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 6, dst->host_mac, 6, 0) < 0)
		return TC_ACT_SHOT;
	fast_count(FAST_STAT_REDIRECT_LOCAL);
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

static __always_inline int handle_ipv4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct fast_ip src, dst;
	struct fast_local_pod *target;

	if ((void *)(ip + 1) > data_end) {
		fast_count(FAST_STAT_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	ipv4_key(&src, ip->saddr);
	if (check_source(skb, &src, eth->h_source) < 0)
		return TC_ACT_SHOT;

	ipv4_key(&dst, ip->daddr);
	target = bpf_map_lookup_elem(&fast_lpod_v1, &dst);
	if (target) {
		/* Let the stack produce ICMP time exceeded for an expiring TTL. */
		if (decrement_ttl_v4(skb, ip->ttl) < 0) {
			fast_count(FAST_STAT_PASS_STACK);
			return TC_ACT_OK;
		}
		return redirect_to_local_pod(skb, target);
	}
	fast_count(FAST_STAT_PASS_STACK);
	return TC_ACT_OK;
}

static __always_inline int is_link_local_v6(const struct in6_addr *a)
{
	return a->in6_u.u6_addr8[0] == 0xfe && (a->in6_u.u6_addr8[1] & 0xc0) == 0x80;
}

static __always_inline int is_unspecified_v6(const struct in6_addr *a)
{
	return (a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] |
		a->in6_u.u6_addr32[2] | a->in6_u.u6_addr32[3]) == 0;
}

static __always_inline int handle_ipv6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct fast_ip src, dst;
	struct fast_local_pod *target;

	if ((void *)(ip6 + 1) > data_end) {
		fast_count(FAST_STAT_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	/* Neighbour discovery and DAD use link-local or unspecified sources: they stay on
	 * the veth link and cannot impersonate another pod's routable address. */
	if (is_link_local_v6(&ip6->saddr) || is_unspecified_v6(&ip6->saddr)) {
		fast_count(FAST_STAT_PASS_STACK);
		return TC_ACT_OK;
	}
	__builtin_memcpy(src.addr, &ip6->saddr, 16);
	if (check_source(skb, &src, eth->h_source) < 0)
		return TC_ACT_SHOT;

	__builtin_memcpy(dst.addr, &ip6->daddr, 16);
	target = bpf_map_lookup_elem(&fast_lpod_v1, &dst);
	if (target && ip6->hop_limit > 1) {
		__u8 hl = ip6->hop_limit - 1;
		bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, hop_limit),
				    &hl, 1, 0);
		return redirect_to_local_pod(skb, target);
	}
	fast_count(FAST_STAT_PASS_STACK);
	return TC_ACT_OK;
}

static __always_inline int handle_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arphdr *arp = data + ETH_HLEN;
	struct arp_eth_ipv4 *body = (void *)(arp + 1);
	struct fast_ip src;
	__u32 spa;

	if ((void *)(body + 1) > data_end) {
		fast_count(FAST_STAT_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (!mac_equal(body->sha, eth->h_source)) {
		fast_count(FAST_STAT_DROP_SPOOF_SRC_MAC);
		return TC_ACT_SHOT;
	}
	__builtin_memcpy(&spa, body->spa, 4);
	ipv4_key(&src, spa);
	if (check_source(skb, &src, eth->h_source) < 0)
		return TC_ACT_SHOT;
	fast_count(FAST_STAT_PASS_STACK);
	return TC_ACT_OK;
}

SEC("tc")
int fast_from_pod(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end) {
		fast_count(FAST_STAT_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4(skb);
	case bpf_htons(ETH_P_IPV6):
		return handle_ipv6(skb);
	case bpf_htons(ETH_P_ARP):
		return handle_arp(skb);
	default:
		fast_count(FAST_STAT_DROP_UNKNOWN_PROTO);
		return TC_ACT_SHOT;
	}
}
