import CLibvirt
import CloudCore
import Foundation

/// A remote host's disks through libvirt's storage API (virStoragePool*, virStorageVol*):
/// the pool is a directory on the host; images arrive by upload streams and instance
/// disks are qcow2 volumes over them (Nova's libvirt image backend on a compute node).
extension LibvirtConnection {
    public func ensurePool(_ name: String, directory: String) throws(CloudError) -> String {
        try Libvirt.translating { () throws(LibvirtError) -> String in
            let pool: virStoragePoolPtr
            if let existing = try lookupPool(name) { pool = existing } else { pool = try defineAndBuild(name, directory: directory) }
            defer { virStoragePoolFree(pool) }
            if virStoragePoolIsActive(pool) != 1 {
                try Libvirt.check("start storage pool \(name)") { virStoragePoolCreate(pool, 0) }
            }
            _ = virStoragePoolSetAutostart(pool, 1)
            let xml = try Libvirt.call("read storage pool \(name)") { virStoragePoolGetXMLDesc(pool, 0) }
            defer { free(xml) }
            return Self.element("path", in: Self.element("target", in: String(cString: xml)) ?? "") ?? directory
        }
    }

    public func volumeNames(pool: String) throws(CloudError) -> [String] {
        try Libvirt.translating { () throws(LibvirtError) -> [String] in
            guard let p = try lookupPool(pool) else { return [] }
            defer { virStoragePoolFree(p) }
            try Libvirt.check("refresh storage pool \(pool)") { virStoragePoolRefresh(p, 0) }
            var vols: UnsafeMutablePointer<virStorageVolPtr?>?
            let count = try Libvirt.check("list volumes of \(pool)") { virStoragePoolListAllVolumes(p, &vols, 0) }
            guard let vols else { return [] }
            defer {
                for i in 0..<Int(count) { if let v = vols[i] { virStorageVolFree(v) } }
                free(vols)
            }
            return (0..<Int(count)).compactMap { i in vols[i].flatMap { virStorageVolGetName($0) }.map { String(cString: $0) } }
        }
    }

    public func uploadVolume(pool: String, volume: String, from localPath: String, format: String) throws(CloudError) -> String {
        let fd = open(localPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open \(localPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io("cannot stat \(localPath): \(String(cString: strerror(errno)))") }
        let size = Int64(st.st_size)
        return try Libvirt.translating { () throws(LibvirtError) -> String in
            guard let p = try lookupPool(pool) else {
                throw LibvirtError(operation: "upload \(volume)", code: 0, message: "storage pool \(pool) does not exist on \(uri)")
            }
            defer { virStoragePoolFree(p) }
            // A plain sparse file of the upload's size (no qemu-img run, no preallocation);
            // the bytes streamed in carry their own format, which the domain names.
            let xml = Self.volumeXML(name: volume, format: "raw", capacity: size, allocation: 0)
            let vol = try Libvirt.call("create volume \(volume) in \(pool)") { virStorageVolCreateXML(p, xml, 0) }
            defer { virStorageVolFree(vol) }
            do throws(LibvirtError) {
                try send(fd: fd, size: size, to: vol, name: volume)
                return try path(of: vol, name: volume)
            } catch {
                _ = virStorageVolDelete(vol, 0)
                virResetLastError()
                throw error
            }
        }
    }

    public func createOverlay(pool: String, volume: String, backingPath: String, backingFormat: String,
                              capacityBytes: Int64) throws(CloudError) -> String {
        try Libvirt.translating { () throws(LibvirtError) -> String in
            guard let p = try lookupPool(pool) else {
                throw LibvirtError(operation: "create \(volume)", code: 0, message: "storage pool \(pool) does not exist on \(uri)")
            }
            defer { virStoragePoolFree(p) }
            let xml = Self.volumeXML(name: volume, format: "qcow2", capacity: capacityBytes,
                                     backing: (backingPath, backingFormat))
            let vol = try Libvirt.call("create volume \(volume) in \(pool)") { virStorageVolCreateXML(p, xml, 0) }
            defer { virStorageVolFree(vol) }
            return try path(of: vol, name: volume)
        }
    }

    public func deleteVolume(pool: String, volume: String) throws(CloudError) {
        try Libvirt.translating { () throws(LibvirtError) in
            guard let p = try lookupPool(pool) else { return }
            defer { virStoragePoolFree(p) }
            virResetLastError()
            guard let vol = virStorageVolLookupByName(p, volume) else {
                // libvirt names a missing volume VIR_ERR_NO_STORAGE_VOL: the goal is reached.
                let code = virGetLastError()?.pointee.code ?? 0
                virResetLastError()
                if code == Int32(VIR_ERR_NO_STORAGE_VOL.rawValue) || code == 0 { return }
                throw LibvirtError(operation: "look up volume \(volume)", code: code, message: "cannot look up \(volume) in \(pool)")
            }
            defer { virStorageVolFree(vol) }
            try Libvirt.check("delete volume \(volume)") { virStorageVolDelete(vol, 0) }
        }
    }

    public func downloadVolume(pool: String, volume: String, to localPath: String) throws(CloudError) {
        let fd = open(localPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("cannot create \(localPath): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(localPath) }
        }
        try Libvirt.translating { () throws(LibvirtError) in
            guard let p = try lookupPool(pool) else {
                throw LibvirtError(operation: "download \(volume)", code: 0, message: "storage pool \(pool) does not exist on \(uri)")
            }
            defer { virStoragePoolFree(p) }
            let vol = try Libvirt.call("look up volume \(volume) in \(pool)") { virStorageVolLookupByName(p, volume) }
            defer { virStorageVolFree(vol) }
            let stream = try Libvirt.call("open a download stream") { virStreamNew(rawHandle, 0) }
            defer { virStreamFree(stream) }
            try Libvirt.check("download \(volume)") { virStorageVolDownload(vol, stream, 0, 0, 0) }
            var buffer = [CChar](repeating: 0, count: 1 << 20)
            while true {
                let n = buffer.withUnsafeMutableBufferPointer { virStreamRecv(stream, $0.baseAddress, $0.count) }
                if n == 0 { break }
                if n < 0 {
                    let message = Libvirt.lastMessage()
                    _ = virStreamAbort(stream)
                    throw LibvirtError(operation: "download \(volume)", code: 0, message: message)
                }
                var off = 0
                while off < Int(n) {
                    let w = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + off, Int(n) - off) }
                    if w <= 0 {
                        _ = virStreamAbort(stream)
                        throw LibvirtError(operation: "download \(volume)", code: 0,
                                           message: "writing \(localPath) failed: \(String(cString: strerror(errno)))")
                    }
                    off += w
                }
            }
            try Libvirt.check("finish downloading \(volume)") { virStreamFinish(stream) }
        }
        ok = true
    }

    // MARK: - Helpers

    private func lookupPool(_ name: String) throws(LibvirtError) -> virStoragePoolPtr? {
        virResetLastError()
        if let p = virStoragePoolLookupByName(rawHandle, name) { return p }
        let code = virGetLastError()?.pointee.code ?? 0
        if code == Int32(VIR_ERR_NO_STORAGE_POOL.rawValue) { virResetLastError(); return nil }
        return try Libvirt.call("look up storage pool \(name)") { virStoragePoolLookupByName(rawHandle, name) }
    }

    private func defineAndBuild(_ name: String, directory: String) throws(LibvirtError) -> virStoragePoolPtr {
        let xml = "<pool type='dir'><name>\(DomainXML.escape(name))</name><target><path>\(DomainXML.escape(directory))</path></target></pool>"
        let pool = try Libvirt.call("define storage pool \(name)") { virStoragePoolDefineXML(rawHandle, xml, 0) }
        do throws(LibvirtError) {
            try Libvirt.check("build storage pool \(name)") { virStoragePoolBuild(pool, 0) }
        } catch {
            _ = virStoragePoolUndefine(pool)
            virStoragePoolFree(pool)
            throw error
        }
        return pool
    }

    /// Streams `size` bytes of `fd` into the volume (virStorageVolUpload + virStreamSend).
    private func send(fd: Int32, size: Int64, to vol: virStorageVolPtr, name: String) throws(LibvirtError) {
        let stream = try Libvirt.call("open an upload stream") { virStreamNew(rawHandle, 0) }
        defer { virStreamFree(stream) }
        try Libvirt.check("upload \(name)") { virStorageVolUpload(vol, stream, 0, UInt64(size), 0) }
        var buffer = [CChar](repeating: 0, count: 1 << 20)
        var sent: Int64 = 0
        while sent < size {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                _ = virStreamAbort(stream)
                throw LibvirtError(operation: "upload \(name)", code: 0, message: "reading the image failed after \(sent) of \(size) bytes")
            }
            var off = 0
            while off < n {
                let w = buffer.withUnsafeBufferPointer { virStreamSend(stream, $0.baseAddress! + off, n - off) }
                if w < 0 {
                    let message = Libvirt.lastMessage()
                    _ = virStreamAbort(stream)
                    throw LibvirtError(operation: "upload \(name)", code: 0, message: message)
                }
                off += Int(w)
            }
            sent += Int64(n)
        }
        try Libvirt.check("finish uploading \(name)") { virStreamFinish(stream) }
    }

    private func path(of vol: virStorageVolPtr, name: String) throws(LibvirtError) -> String {
        let p = try Libvirt.call("read the path of \(name)") { virStorageVolGetPath(vol) }
        defer { free(p) }
        return String(cString: p)
    }

    static func volumeXML(name: String, format: String, capacity: Int64, allocation: Int64? = nil,
                          backing: (String, String)? = nil) -> String {
        var x = "<volume><name>\(DomainXML.escape(name))</name><capacity unit='bytes'>\(capacity)</capacity>"
        if let allocation { x += "<allocation unit='bytes'>\(allocation)</allocation>" }
        // compat 1.1: libvirt would otherwise make qcow2 files in the old 0.10 format.
        x += "<target><format type='\(DomainXML.escape(format))'/>" + (format == "qcow2" ? "<compat>1.1</compat>" : "") + "</target>"
        if let (path, fmt) = backing {
            x += "<backingStore><path>\(DomainXML.escape(path))</path><format type='\(DomainXML.escape(fmt))'/></backingStore>"
        }
        return x + "</volume>"
    }

    /// The text of the first `<tag>…</tag>` in `xml`.
    static func element(_ tag: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(tag)>"),
              let close = xml.range(of: "</\(tag)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }
}
