// C boundary for libvirt. Only LibvirtCompute imports this module.
#ifndef CLOUDFS_CLIBVIRT_SHIM_H
#define CLOUDFS_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
