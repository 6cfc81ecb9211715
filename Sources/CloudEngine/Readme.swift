/// The text of `/README`: what the tree is, one screen.
enum Readme {
    static let text = """
    cloudfs: a small IaaS cloud as a file tree (Nova + Glance in spirit).

      cp disk.qcow2 images/          register an image (then see images.d/NAME/)
      mkdir instances/web1           schedule, allocate an IP, boot a VM
      cat instances/web1/wait        block until the build ends; prints the status
      cat instances/web1/ip          its fixed IP
      tail instances/web1/console    its serial console
      rmdir instances/web1           destroy it and release everything

    events       one line per event and refusal (tail -f follows it)
    defaults/    image, flavor, network, project, group, availability_zone used by mkdir
    images/      image bytes: cp in, cp out, rm, mv; xattrs user.cloud.*
    images.d/    per image: status format size virtual_size checksum ... properties/
    instances/   per instance: status vm_state task_state power_state fault host ip mac ...
                 ctl: start stop reboot 'reboot hard' pause unpause suspend resume
                      lock unlock 'migrate [HOST]' (one per write)
    flavors/     vcpus ram_mb disk_gb (mkdir + write to create; admin only)
    hosts/       libvirt hosts: uri state vcpus ram_mb disk_gb *_used instances,
                 availability_zone (rw), ctl (enable | disable | evacuate)
    groups/      server groups: policy (anti-affinity|affinity), members; join via defaults/group
    users/       registered users (admin mkdir): uid, project (rw: where your objects go), projects
    projects/    members (USER ROLE), gid, quota/ (admin), usage/ (live)
    scheduler/   Nova's FilterScheduler options (rw): driver filters weighers
                 host_subset_size max_attempts *_allocation_ratio *_weight_multiplier;
                 last (ro): the most recent decision, filter by filter

    Errors come back as errno (EINVAL, EEXIST, ENOENT, EBUSY, ENOSPC, EDQUOT, EACCES, ...);
    the reason is in events and in the instance's fault file.

    """
}
