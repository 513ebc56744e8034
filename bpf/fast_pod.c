/* tc program on the host-side veth of every pod, ingress direction: it sees every
 * packet the pod sends.
 *
 *  - anti-spoofing: an IPv4/IPv6/ARP packet whose source address or MAC is not the
 *    sending pod's is dropped; other ethertypes are dropped too (a pod has no business
 *    sending them);
 *  - a packet for another pod of this node goes straight into that pod with
 *    bpf_redirect_peer (no host stack, no second veth traversal);
 *  - with cross-node networking on (fast_cfg_v1), a packet for a pod or node of the
 *    cluster map leaves towards that node: VXLAN-encapsulated here and out of the uplink,
 *    or tunnel key + fast_vxlan (overlay), or bpf_redirect_neigh on the uplink (native
 *    routing);
 *  - everything else goes to the host stack (TC_ACT_OK), where masquerading applies to
 *    destinations outside the cluster. */
#include <linux/if_arp.h>
#include "fast_lib.h"

char LICENSE[] SEC("license") = "GPL";

struct arp_eth_ipv4 {
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

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

/* Local delivery writes the packet directly instead of through bpf_skb_store_bytes /
 * bpf_l3_csum_replace: fewer helper calls per packet, each of which re-checked that the skb
 * is writable. Direct writes make the verifier add its unclone prologue (a cloned skb, such
 * as TCP's, is made writable once at the start of the program). Measured live against one
 * bpf_skb_store_bytes over the 26 bytes that change, which needs no prologue: direct writes
 * cost less on TCP and UDP alike (docs/benchmarks.md, "what fast_from_pod itself costs"). */

/* TTL - 1 with the header checksum updated incrementally, as the kernel's
 * ip_decrease_ttl does (RFC 1624: the TTL is the high byte of its 16-bit word). */
static __always_inline void ttl_dec_direct(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

/* Ethernet header as a router would write it (pod_mac and host_mac are adjacent in the map
 * value: destination then source), then into the target pod's eth0. */
static __always_inline int deliver_local_direct(struct __sk_buff *skb, struct ethhdr *eth,
						const struct fast_local_pod *dst)
{
	__builtin_memcpy(eth, dst->pod_mac, 12);
	fast_count(FAST_STAT_REDIRECT_LOCAL);
	return bpf_redirect_peer(dst->host_ifindex, 0);
}

/* Not for a local pod: a remote pod or node (cluster map) when cross-node networking is
 * on, else the host stack. `dst` is the destination's key. */
static __always_inline struct fast_cluster_pod *remote_for(const struct fast_ip *dst,
							   struct fast_config **cfg)
{
	*cfg = fast_cfg();
	if (!*cfg || (*cfg)->mode == FAST_MODE_LOCAL)
		return 0;
	return bpf_map_lookup_elem(&fast_cpod_v1, dst);
}

static __always_inline int handle_ipv4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct fast_ip src, dst;
	struct fast_local_pod *target;
	struct fast_cluster_pod *remote;
	struct fast_config *cfg;

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
		if (ip->ttl <= 1) {
			fast_count(FAST_STAT_PASS_STACK);
			return TC_ACT_OK;
		}
		ttl_dec_direct(ip);
		return deliver_local_direct(skb, eth, target);
	}
	remote = remote_for(&dst, &cfg);
	if (remote && cfg) {
		__u8 tos = ip->tos; /* read before the TTL helper invalidates packet pointers */

		if (decrement_ttl_v4(skb, ip->ttl) == 0)
			return forward_to_remote(skb, cfg, remote, bpf_htons(ETH_P_IP), tos);
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
	struct fast_cluster_pod *remote;
	struct fast_config *cfg;

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
	if (target) {
		if (ip6->hop_limit > 1) {
			ip6->hop_limit--;
			return deliver_local_direct(skb, eth, target);
		}
	} else {
		remote = remote_for(&dst, &cfg);
		if (remote && cfg && decrement_hop_limit_v6(skb, ip6->hop_limit) == 0)
			return forward_to_remote(skb, cfg, remote, bpf_htons(ETH_P_IPV6), 0);
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
