import Foundation

/// The calling thread's identity (`pthread_self`), for state kept per thread around a
/// synchronous call (`EventLog.capture`, `Store.withEventLines`).
public enum ThreadID {
    public static var current: UInt { UInt(pthread_self()) }   // pthread_t is an integer on Linux
}
