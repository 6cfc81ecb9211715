// LibvirtCompute: the libvirt compute driver (Nova's nova/virt/libvirt), the only user of CLibvirt.
