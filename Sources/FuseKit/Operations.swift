import CFuse
import CloudCore
#if canImport(Glibc)
import Glibc
#endif

/// The `struct fuse_lowlevel_ops` table: one C callback per operation. C callbacks cannot
/// capture context, so each recovers the `SessionCore` from `fuse_req_userdata`, wraps the
/// request, calls the handler, and replies with its result or its error's errno.
enum Operations {
    static func table() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let userdata, let conn else { return }
            let core = Unmanaged<SessionCore>.fromOpaque(userdata).takeUnretainedValue()
            let o = core.options
            var want = conn.pointee.want
            let capable = conn.pointee.capable
            for cap in [FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_READDIRPLUS, FUSE_CAP_ATOMIC_O_TRUNC,
                        FUSE_CAP_ASYNC_READ] where capable & UInt32(cap) != 0 {
                want |= UInt32(cap)
            }
            if o.alwaysReaddirPlus { want &= ~UInt32(FUSE_CAP_READDIRPLUS_AUTO) }
            conn.pointee.want = want
            conn.pointee.max_write = UInt32(o.maxWrite)
        }
        ops.destroy = { userdata in
            guard let userdata else { return }
            Unmanaged<SessionCore>.fromOpaque(userdata).takeUnretainedValue().handler.destroy()
        }
        ops.lookup = { req, parent, name in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyEntry(try c.handler.lookup(r, parent: Inode(parent), name: string(name)))
                }
            }
        }
        ops.forget = { req, ino, n in
            serve(req) { c, r in
                c.handler.forget(Inode(ino), lookups: n)
                r.replyNone()
            }
        }
        ops.forget_multi = { req, count, forgets in
            serve(req) { c, r in
                if let forgets {
                    for i in 0..<count { c.handler.forget(Inode(forgets[i].ino), lookups: forgets[i].nlookup) }
                }
                r.replyNone()
            }
        }
        ops.getattr = { req, ino, fi in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyAttr(try c.handler.getattr(r, inode: Inode(ino), file: fi.map(FileInfo.init)))
                }
            }
        }
        ops.setattr = { req, ino, attr, valid, fi in
            serve(req) { c, r in
                guard let attr else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    let changes = AttributeChanges(attr, valid: valid)
                    r.replyAttr(try c.handler.setattr(r, inode: Inode(ino), changes: changes,
                                                      file: fi.map(FileInfo.init)))
                }
            }
        }
        ops.opendir = { req, ino, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    let reply = try c.handler.opendir(r, inode: Inode(ino), flags: OpenFlags(rawValue: fi.pointee.flags))
                    r.replyOpen(reply, fi)
                }
            }
        }
        ops.readdir = { req, ino, size, off, fi in readdir(req, ino, size, off, fi, plus: false) }
        ops.readdirplus = { req, ino, size, off, fi in readdir(req, ino, size, off, fi, plus: true) }
        ops.releasedir = { req, ino, fi in
            serve(req) { c, r in
                if let fi { c.handler.releasedir(r, inode: Inode(ino), file: FileInfo(fi)) }
                r.replyOK()
            }
        }
        ops.open = { req, ino, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    let reply = try c.handler.open(r, inode: Inode(ino), flags: OpenFlags(rawValue: fi.pointee.flags))
                    r.replyOpen(reply, fi)
                }
            }
        }
        ops.read = { req, ino, size, off, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                c.trackInterrupts(r)
                attempt(r) { () throws(CloudError) in
                    switch try c.handler.read(r, inode: Inode(ino), file: FileInfo(fi), offset: Int64(off), size: size) {
                    case .bytes(let bytes): r.reply(bytes: bytes.prefix(size))
                    case .file(let fd, let offset, let count): r.replyFile(descriptor: fd, offset: offset, count: min(count, size))
                    case .deferred: c.park(r)
                    }
                }
            }
        }
        ops.write = { req, ino, buf, size, off, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    let data = UnsafeRawBufferPointer(start: buf, count: size)
                    r.replyWrite(try c.handler.write(r, inode: Inode(ino), file: FileInfo(fi), offset: Int64(off), data: data))
                }
            }
        }
        ops.flush = { req, ino, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    try c.handler.flush(r, inode: Inode(ino), file: FileInfo(fi))
                    r.replyOK()
                }
            }
        }
        ops.release = { req, ino, fi in
            serve(req) { c, r in
                if let fi { c.handler.release(r, inode: Inode(ino), file: FileInfo(fi)) }
                r.replyOK()
            }
        }
        ops.create = { req, parent, name, mode, fi in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                attempt(r) { () throws(CloudError) in
                    let (entry, open) = try c.handler.create(r, parent: Inode(parent), name: string(name),
                                                             mode: UInt32(mode), flags: OpenFlags(rawValue: fi.pointee.flags))
                    r.replyCreate(entry, open, fi)
                }
            }
        }
        ops.mknod = { req, parent, name, mode, rdev in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyEntry(try c.handler.mknod(r, parent: Inode(parent), name: string(name),
                                                     mode: UInt32(mode), device: UInt64(rdev)))
                }
            }
        }
        ops.mkdir = { req, parent, name, mode in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyEntry(try c.handler.mkdir(r, parent: Inode(parent), name: string(name), mode: UInt32(mode)))
                }
            }
        }
        ops.symlink = { req, link, parent, name in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyEntry(try c.handler.symlink(r, target: string(link), parent: Inode(parent), name: string(name)))
                }
            }
        }
        ops.readlink = { req, ino in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyReadlink(try c.handler.readlink(r, inode: Inode(ino)))
                }
            }
        }
        ops.rmdir = { req, parent, name in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    try c.handler.rmdir(r, parent: Inode(parent), name: string(name))
                    r.replyOK()
                }
            }
        }
        ops.unlink = { req, parent, name in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    try c.handler.unlink(r, parent: Inode(parent), name: string(name))
                    r.replyOK()
                }
            }
        }
        ops.rename = { req, parent, name, newparent, newname, flags in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    try c.handler.rename(r, parent: Inode(parent), name: string(name), newParent: Inode(newparent),
                                         newName: string(newname), flags: RenameFlags(rawValue: UInt32(flags)))
                    r.replyOK()
                }
            }
        }
        ops.getxattr = { req, ino, name, size in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    replyXattr(r, try c.handler.getxattr(r, inode: Inode(ino), name: string(name)), size)
                }
            }
        }
        ops.listxattr = { req, ino, size in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    let names = try c.handler.listxattr(r, inode: Inode(ino))
                    replyXattr(r, names.flatMap { Array($0.utf8) + [0] }, size)
                }
            }
        }
        ops.setxattr = { req, ino, name, value, size, flags in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    try c.handler.setxattr(r, inode: Inode(ino), name: string(name),
                                           value: UnsafeRawBufferPointer(start: value, count: size), flags: flags)
                    r.replyOK()
                }
            }
        }
        ops.removexattr = { req, ino, name in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    try c.handler.removexattr(r, inode: Inode(ino), name: string(name))
                    r.replyOK()
                }
            }
        }
        ops.poll = { req, ino, fi, ph in
            serve(req) { c, r in
                guard let fi else { return r.reply(error: .invalid) }
                let handle = ph.map { PollHandle($0, core: c) }
                attempt(r) { () throws(CloudError) in
                    r.replyPoll(try c.handler.poll(r, inode: Inode(ino), file: FileInfo(fi), handle: handle))
                }
            }
        }
        ops.statfs = { req, ino in
            serve(req) { c, r in
                attempt(r) { () throws(CloudError) in
                    r.replyStatfs(try c.handler.statfs(r, inode: Inode(ino)))
                }
            }
        }
        return ops
    }
}

/// Recovers the session and runs `body` with a fresh `Request`.
@inline(__always)
private func serve(_ req: fuse_req_t?, _ body: (SessionCore, Request) -> Void) {
    guard let req, let data = fuse_req_userdata(req) else { return }
    let core = Unmanaged<SessionCore>.fromOpaque(data).takeUnretainedValue()
    body(core, Request(req, core: core))
}

/// Runs a handler call that throws `CloudError`; on error replies its errno.
@inline(__always)
private func attempt(_ r: Request, _ body: () throws(CloudError) -> Void) {
    do { try body() } catch { r.reply(error: error.errno) }
}

private func string(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

/// The xattr size protocol: size 0 asks for the length; a too-small buffer is ERANGE.
private func replyXattr(_ r: Request, _ value: [UInt8], _ size: Int) {
    if size == 0 { return r.replyXattrSize(value.count) }
    if value.count > size { return r.reply(error: .range) }
    r.reply(bytes: value)
}

private func readdir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t,
                    _ fi: UnsafeMutablePointer<fuse_file_info>?, plus: Bool) {
    serve(req) { c, r in
        guard let fi else { return r.reply(error: .invalid) }
        var buffer = DirectoryBuffer(request: r.raw, capacity: size, plus: plus)
        do throws(CloudError) {
            try c.handler.readdir(r, inode: Inode(ino), file: FileInfo(fi), offset: Int64(off), into: &buffer)
            buffer.withBytes { p, n in r.replyBuffer(p, n) }
        } catch {
            r.reply(error: error.errno)
        }
    }
}
