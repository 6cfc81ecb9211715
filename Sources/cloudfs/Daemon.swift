import CloudCore
import CloudEngine
import CloudFS
import Foundation
import FuseKit
import HostAgent
import LibvirtCompute
import Logging
import MetadataServer

/// The mounted cloud: engine + tree + FUSE session, with SIGINT/SIGTERM/SIGHUP ending the
/// session cleanly (the signals are blocked in every thread and taken by one `sigwait`
/// thread, so no libfuse handler races Swift's threads).
struct Daemon {
    var mountpoint: String
    var stateDir: String
    var hostURIs: [String]
    var virtType: String
    var allowOther: Bool
    var manageNetwork: Bool
    var volumeGroup: String?
    var sshPorts: ClosedRange<Int>
    var metadataPort: Int
    var daemonChild: Bool

    func run() throws {
        if daemonChild { setsid() }
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let log = Logger(label: "cloudfs")
        var driver = LibvirtDriver(virtType: VirtType(rawValue: virtType) ?? .auto, stateDir: stateDir)
        // qemu+tls:// hosts: libvirt's own CA and the controller's client certificate in
        // STATE/pki/libvirt (made on first use; `cloudfs agent-credentials` issues hosts').
        let libvirtPKI = LibvirtPKI(directory: stateDir + "/pki/libvirt")
        driver.tlsClient = (libvirtPKI.clientPath, { () throws(CloudError) in try libvirtPKI.ensureClient() })
        let engine: Engine
        do {
            var config = EngineConfiguration(stateDir: stateDir, hostURIs: hostURIs)
            config.manageNetwork = manageNetwork
            config.volumeGroup = volumeGroup
            config.sshPorts = sshPorts
            if manageNetwork { config.metadataPort = metadataPort }
            // The agents' client: the cloud's CA and the controller's certificate live in
            // STATE/pki (made on first use, `cloudfs agent-credentials` issues hosts').
            let agents = GRPCHostAgents(pki: AgentPKI(directory: stateDir + "/pki"))
            engine = try Engine(config: config, driver: driver, agents: agents)
        } catch {
            log.critical("cannot start: \(error)")
            throw error
        }
        if manageNetwork {
            // Nova's metadata API for the guests on the managed networks (169.254.169.254
            // is redirected to it on each network's gateway).
            MetadataHTTPServer(source: engine, port: metadataPort, logger: Logger(label: "cloudfs.metadata")).start { reason in
                engine.events.append(kind: "metadata.error", object: "-", ["reason": reason])
                log.error("\(reason)")
            }
        }
        let fs = CloudFileSystem(api: engine, options: allowOther ? .sharedByUsers : .init())
        var options = FuseSession.Options()
        options.allowOther = allowOther
        options.defaultPermissions = allowOther
        let session = FuseSession(mountpoint: mountpoint, options: options, handler: fs)
        do { try session.mount() } catch {
            log.critical("cannot mount \(mountpoint): \(error)")
            throw error
        }
        fs.attach(session)
        do { try PidFile.write(mountpoint: mountpoint, stateDir: stateDir) } catch {
            log.warning("cannot record the daemon in \(PidFile.dir) (unmount will not wait for it): \(error)")
        }
        engine.events.append(kind: "cloud.mounted", object: mountpoint, ["pid": "\(getpid())"])

        let waitSet = set
        let signals = Thread {
            var set = waitSet
            var sig: Int32 = 0
            sigwait(&set, &sig)
            log.info("signal \(sig): unmounting \(mountpoint)")
            session.exit()
        }
        signals.start()

        if daemonChild {
            // Tell the launching process we are ready, then send stdout to the log.
            FileHandle.standardOutput.write(Data("ready\n".utf8))
            dup2(STDERR_FILENO, STDOUT_FILENO)
        }
        log.info("cloudfs mounted on \(mountpoint), state in \(stateDir)")
        try session.run()
        engine.events.append(kind: "cloud.unmounted", object: mountpoint, [:])
        engine.drain()
        unlink(PidFile.path(for: mountpoint))
        log.info("unmounted \(mountpoint)")
    }
}
