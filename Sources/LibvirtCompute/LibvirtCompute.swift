// LibvirtCompute: the libvirt compute driver (Nova's nova/virt/libvirt), the only user of CLibvirt.
//
// Split as Nova splits its libvirt driver, in small files:
//   LibvirtDriver.swift      configuration (virt type, state dir) and opening connections
//   LibvirtConnection.swift  one open hypervisor connection: the ComputeConnection contract
//   LibvirtError.swift       the one helper that calls libvirt and captures its thread-local error
//   EventLoop.swift          libvirt's default event loop on a dedicated thread (embedded driver)
//   EmbedRoot.swift          preparing `qemu:///embed?root=DIR` (qemu.conf) before it is opened
//   DomainXML.swift          domain XML rendering with proper escaping (Nova's config.py)
