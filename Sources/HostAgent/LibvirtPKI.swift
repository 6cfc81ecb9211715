import CloudCore
import Foundation

/// libvirt's TLS transport (`qemu+tls://`, libvirt's "Generating TLS certificates"): a CA of
/// its own, apart from the agents' (so no libvirt certificate, which every host holds as a
/// client for peer-to-peer migration, is accepted by an agent), one server-and-client
/// certificate per host naming the addresses its URI uses, and one client certificate for
/// the controller.
///
/// `STATE/pki/libvirt` is the controller's `pkipath` (cacert.pem, clientcert.pem,
/// clientkey.pem; the CA key beside them, 0600). A host's credentials are written in
/// `/etc/pki` layout: `CA/cacert.pem`, `libvirt/servercert.pem`,
/// `libvirt/private/serverkey.pem`, `libvirt/clientcert.pem`, `libvirt/private/clientkey.pem`.
public struct LibvirtPKI: Sendable {
    /// `STATE/pki/libvirt`.
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// The directory libvirt's `pkipath` URI parameter names.
    public var clientPath: String { directory }

    var authority: CertificateAuthority {
        CertificateAuthority(certFile: directory + "/cacert.pem", keyFile: directory + "/cakey.pem",
                             commonName: "cloudfs libvirt CA")
    }

    /// The CA and the controller's client certificate, made on first use.
    public func ensureClient() throws(CloudError) {
        let (cert, key) = (directory + "/clientcert.pem", directory + "/clientkey.pem")
        do {
            try CertificateAuthority.makeDirectory(directory)
            let made = try authority.ensure()
            if made || !FileManager.default.fileExists(atPath: cert) || !FileManager.default.fileExists(atPath: key) {
                let leaf = try authority.issue(.init(commonName: "cloudfs-controller", dnsNames: ["cloudfs-controller"],
                                                     usages: [.clientAuth], keyEncipherment: true))
                try CertificateAuthority.write(leaf.key, to: key, secret: true)
                try CertificateAuthority.write(leaf.certificate, to: cert, secret: false)
            }
        } catch let e as CloudError { throw e } catch {
            throw CloudError.io("cannot make libvirt's certificate authority in \(directory): \(error)")
        }
    }

    /// Writes host `name`'s libvirt credentials into `out` in `/etc/pki` layout. The server
    /// certificate names `name` and each of `addresses` (libvirt checks the host part of
    /// the URI against it); the same key pair is the host's client certificate, which its
    /// libvirtd presents when it migrates a guest to another host.
    public func issueHostCredentials(host name: String, addresses: [String], into out: String) throws(CloudError) {
        try ObjectName.validate(name, kind: "host")
        try ensureClient()
        do {
            for d in ["CA", "libvirt/private"] { try CertificateAuthority.makeDirectory(out + "/" + d) }
            let server = try authority.issue(.init(commonName: name, dnsNames: [name], ipAddresses: addresses,
                                                   usages: [.serverAuth], keyEncipherment: true))
            let client = try authority.issue(.init(commonName: name, dnsNames: [name], ipAddresses: addresses,
                                                   usages: [.clientAuth], keyEncipherment: true))
            try CertificateAuthority.write(authority.certificatePEM(), to: out + "/CA/cacert.pem", secret: false)
            try CertificateAuthority.write(server.certificate, to: out + "/libvirt/servercert.pem", secret: false)
            try CertificateAuthority.write(server.key, to: out + "/libvirt/private/serverkey.pem", secret: true)
            try CertificateAuthority.write(client.certificate, to: out + "/libvirt/clientcert.pem", secret: false)
            try CertificateAuthority.write(client.key, to: out + "/libvirt/private/clientkey.pem", secret: true)
        } catch let e as CloudError { throw e } catch {
            throw CloudError.io("cannot issue host \(name)'s libvirt certificates into \(out): \(error)")
        }
    }
}
