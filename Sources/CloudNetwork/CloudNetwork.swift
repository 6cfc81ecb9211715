// CloudNetwork: nova-network's address management: CIDR arithmetic, fixed-IP pools, MACs.
