// CloudStore: the SQLite state of the cloud through GRDB (DatabasePool, WAL, synchronous=NORMAL).
// Schema lives in migrations; records are plain Codable structs; every intent-level method is one transaction.
