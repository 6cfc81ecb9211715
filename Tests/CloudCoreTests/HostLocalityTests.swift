import CloudCore
import XCTest

/// Which libvirt URIs name another machine (whose disks then live in its own pool).
final class HostLocalityTests: XCTestCase {
    func testRemoteURIs() {
        for uri in ["qemu+tcp://10.250.0.2/system", "qemu+ssh://node2/system", "qemu+tls://node2.example/system",
                    "qemu://node2/system", "qemu+ssh://root@node2:2222/system?keyfile=/k"] {
            XCTAssertTrue(HostLocality.isRemote(uri), uri)
        }
    }

    func testLocalURIs() {
        for uri in ["qemu:///system", "qemu:///embed?root=/var/lib/cloudfs/libvirt", "test:///default",
                    "test:///tmp/host.xml", "test+unix:///default?socket=/tmp/s", "qemu+unix:///system",
                    "qemu://localhost/system", "not a uri"] {
            XCTAssertFalse(HostLocality.isRemote(uri), uri)
        }
    }

    func testTLSURIs() {
        for uri in ["qemu+tls://node2/system", "qemu://node2/system", "qemu+tls://10.0.0.2/system?pkipath=/p"] {
            XCTAssertTrue(HostLocality.usesTLS(uri), uri)
        }
        for uri in ["qemu+tcp://10.250.0.2/system", "qemu+ssh://node2/system", "qemu:///system", "test:///default",
                    "qemu://localhost/system"] {
            XCTAssertFalse(HostLocality.usesTLS(uri), uri)
        }
    }

    /// A parameter is added to the query once; the operator's own value wins.
    func testAddingAQueryParameter() {
        XCTAssertEqual(HostLocality.adding("pkipath", "/s/pki", to: "qemu+tls://n/system"), "qemu+tls://n/system?pkipath=/s/pki")
        XCTAssertEqual(HostLocality.adding("pkipath", "/s/pki", to: "qemu+tls://n/system?no_tty=1"),
                       "qemu+tls://n/system?no_tty=1&pkipath=/s/pki")
        XCTAssertEqual(HostLocality.adding("pkipath", "/s/pki", to: "qemu+tls://n/system?pkipath=/mine"),
                       "qemu+tls://n/system?pkipath=/mine")
    }
}
