import GRDB

/// Usage counters kept by SQLite triggers (Nova's `compute_nodes.*_used` columns, and the
/// per-project usage its quota engine once kept in `quota_usages`): every claim and every
/// quota check reads one row instead of summing the `instance` table, which made each build
/// cost O(instances) (19.8 ms a build at 5,000 instances, 3.2 ms in an empty cloud).
///
/// The triggers run inside the transaction that changes the instance row, so a counter
/// always equals the sum it stands for; `UsageCountersTests` checks that against the sums.
extension Migrations {
    static func registerUsageCounters(_ m: inout DatabaseMigrator) {
        m.registerMigration("v17-usage-counters") { db in
            try db.execute(sql: """
            CREATE TABLE host_usage (
                host TEXT PRIMARY KEY NOT NULL,
                claims INTEGER NOT NULL DEFAULT 0,
                vcpus INTEGER NOT NULL DEFAULT 0,
                ram_mb INTEGER NOT NULL DEFAULT 0,
                disk_gb INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
            CREATE TABLE project_usage (
                project TEXT PRIMARY KEY NOT NULL,
                instances INTEGER NOT NULL DEFAULT 0,
                cores INTEGER NOT NULL DEFAULT 0,
                ram_mb INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
            INSERT INTO host_usage (host, claims, vcpus, ram_mb, disk_gb)
              SELECT host, COUNT(*), SUM(v), SUM(r), SUM(d) FROM (
                SELECT host, vcpus AS v, ram_mb AS r, disk_gb AS d FROM instance WHERE host IS NOT NULL
                UNION ALL
                SELECT old_host, old_vcpus, old_ram_mb, old_disk_gb FROM instance WHERE old_host IS NOT NULL)
              GROUP BY host;
            INSERT INTO project_usage (project, instances, cores, ram_mb)
              SELECT project, COUNT(*), SUM(vcpus), SUM(ram_mb) FROM instance GROUP BY project;
            CREATE TRIGGER instance_usage_insert AFTER INSERT ON instance BEGIN
              \(adds("NEW"))
            END;
            CREATE TRIGGER instance_usage_delete AFTER DELETE ON instance BEGIN
              \(drops("OLD"))
            END;
            CREATE TRIGGER instance_usage_update
              AFTER UPDATE OF project, vcpus, ram_mb, disk_gb, host, old_host, old_vcpus, old_ram_mb, old_disk_gb ON instance
              WHEN OLD.project IS NOT NEW.project OR OLD.vcpus IS NOT NEW.vcpus OR OLD.ram_mb IS NOT NEW.ram_mb
                OR OLD.disk_gb IS NOT NEW.disk_gb OR OLD.host IS NOT NEW.host OR OLD.old_host IS NOT NEW.old_host
                OR OLD.old_vcpus IS NOT NEW.old_vcpus OR OLD.old_ram_mb IS NOT NEW.old_ram_mb OR OLD.old_disk_gb IS NOT NEW.old_disk_gb
            BEGIN
              \(drops("OLD"))
              \(adds("NEW"))
            END;
            """)
        }
    }

    /// Where an instance row holds a claim on a host: its placement, and the `old_*` claim
    /// a resize or migration keeps until it ends (host, vCPUs, RAM, disk columns).
    private static let claimColumns = [("host", "vcpus", "ram_mb", "disk_gb"),
                                       ("old_host", "old_vcpus", "old_ram_mb", "old_disk_gb")]

    /// Statements that add `row`'s claims and project usage to the counters.
    private static func adds(_ row: String) -> String {
        claimColumns.map { host, v, r, d in
            """
            INSERT INTO host_usage (host, claims, vcpus, ram_mb, disk_gb)
              SELECT \(row).\(host), 1, \(row).\(v), \(row).\(r), \(row).\(d) WHERE \(row).\(host) IS NOT NULL
              ON CONFLICT (host) DO UPDATE SET claims = claims + 1, vcpus = vcpus + excluded.vcpus,
                ram_mb = ram_mb + excluded.ram_mb, disk_gb = disk_gb + excluded.disk_gb;
            """
        }.joined(separator: "\n") + """

        INSERT INTO project_usage (project, instances, cores, ram_mb)
          SELECT \(row).project, 1, \(row).vcpus, \(row).ram_mb WHERE true
          ON CONFLICT (project) DO UPDATE SET instances = instances + 1, cores = cores + excluded.cores,
            ram_mb = ram_mb + excluded.ram_mb;
        """
    }

    /// Statements that take `row`'s claims and project usage off the counters.
    private static func drops(_ row: String) -> String {
        claimColumns.map { host, v, r, d in
            """
            UPDATE host_usage SET claims = claims - 1, vcpus = vcpus - \(row).\(v), ram_mb = ram_mb - \(row).\(r),
              disk_gb = disk_gb - \(row).\(d) WHERE host = \(row).\(host);
            """
        }.joined(separator: "\n") + """

        UPDATE project_usage SET instances = instances - 1, cores = cores - \(row).vcpus, ram_mb = ram_mb - \(row).ram_mb
          WHERE project = \(row).project;
        """
    }
}
