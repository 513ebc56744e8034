/* tc programs on the node's network-facing devices (cross-node pod networking).
 *
 *  fast_from_overlay  fast_vxlan ingress: packets decapsulated by the VXLAN device (in
 *                     collect-metadata mode). Another VNI is dropped; a packet for a
 *                     local pod goes straight into it with bpf_redirect_peer; the rest
 *                     (for the node itself) goes to the host stack.
 *  fast_to_overlay    fast_vxlan egress: packets the host stack routes into the tunnel
 *                     (node -> remote pod). Their tunnel key comes from the cluster map;
 *                     an unknown destination is dropped (there is nowhere to send it).
 *                     Packets fast_from_pod redirected here already carry their key.
 *  fast_from_uplink   uplink ingress in native-routing mode: a packet for a local pod
 *                     goes straight into it; everything else to the host stack. */
#include "fast_lib.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int fast_from_overlay(struct __sk_buff *skb)
{
	struct fast_config *cfg = fast_cfg();
	struct bpf_tunnel_key key = {};

	if (!cfg || cfg->mode != FAST_MODE_OVERLAY)
		return TC_ACT_OK;
	/* The VXLAN driver attaches the metadata to every packet it decapsulates; only a
	 * packet that did not come through it (a crafted test packet) has none to check. */
	if (get_tunnel(skb, &key) == 0 && key.tunnel_id != cfg->vni) {
		fast_count(FAST_STAT_DROP_VNI);
		return TC_ACT_SHOT;
	}
	return deliver_from_net(skb);
}

SEC("tc")
int fast_to_overlay(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct fast_config *cfg = fast_cfg();
	struct fast_cluster_pod *remote;
	struct bpf_tunnel_key key = {};
	struct fast_ip dst;

	if (!cfg || cfg->mode != FAST_MODE_OVERLAY)
		goto drop;
	if (get_tunnel(skb, &key) == 0)
		return TC_ACT_OK; /* keyed by fast_from_pod */
	if ((void *)(eth + 1) > data_end)
		goto drop;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto drop;
		ipv4_key(&dst, ip->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto drop;
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
	} else {
		goto drop;
	}
	remote = bpf_map_lookup_elem(&fast_cpod_v1, &dst);
	if (!remote)
		goto drop;
	/* The stack wrote fast_vxlan's own MAC as source: the receiver would take that for
	 * a loop, so both MACs are set as fast_from_pod sets them. */
	if (set_tunnel(skb, cfg, &remote->node_ip) < 0 ||
	    bpf_skb_store_bytes(skb, 0, cfg->overlay_mac, 12, 0) < 0) {
		fast_count(FAST_STAT_DROP_TUNNEL_KEY);
		return TC_ACT_SHOT;
	}
	fast_count(FAST_STAT_ENCAP_FROM_HOST);
	return TC_ACT_OK;
drop:
	fast_count(FAST_STAT_DROP_NO_REMOTE);
	return TC_ACT_SHOT;
}

SEC("tc")
int fast_from_uplink(struct __sk_buff *skb)
{
	struct fast_config *cfg = fast_cfg();

	if (!cfg || cfg->mode != FAST_MODE_NATIVE)
		return TC_ACT_OK;
	return deliver_from_net(skb);
}
