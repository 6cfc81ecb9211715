import CloudCore
import Foundation
import GRDB

/// The schema, as GRDB migrations. Constraints live here, not in Swift: names are unique,
/// an IP and a MAC belong to at most one instance, properties die with their image.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
            CREATE TABLE setting (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
            CREATE TABLE flavor (
                name TEXT PRIMARY KEY NOT NULL,
                vcpus INTEGER NOT NULL CHECK (vcpus > 0),
                ram_mb INTEGER NOT NULL CHECK (ram_mb > 0),
                disk_gb INTEGER NOT NULL CHECK (disk_gb >= 0),
                owner_uid INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE image (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL CHECK (status IN ('queued','saving','active','killed')),
                format TEXT NOT NULL,
                size INTEGER NOT NULL DEFAULT 0,
                virtual_size INTEGER NOT NULL DEFAULT 0,
                checksum TEXT NOT NULL DEFAULT '',
                created DOUBLE NOT NULL,
                activated DOUBLE,
                min_ram_mb INTEGER NOT NULL DEFAULT 0,
                min_disk_gb INTEGER NOT NULL DEFAULT 0,
                owner_uid INTEGER NOT NULL,
                path TEXT NOT NULL UNIQUE);
            CREATE TABLE image_property (
                image_id TEXT NOT NULL REFERENCES image(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (image_id, key));
            CREATE TABLE host (
                name TEXT PRIMARY KEY NOT NULL,
                uri TEXT NOT NULL UNIQUE,
                enabled INTEGER NOT NULL DEFAULT 1,
                created DOUBLE NOT NULL);
            CREATE TABLE network (
                name TEXT PRIMARY KEY NOT NULL,
                cidr TEXT NOT NULL UNIQUE,
                gateway TEXT NOT NULL,
                mode TEXT NOT NULL);
            CREATE TABLE instance (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL UNIQUE,
                owner_uid INTEGER NOT NULL,
                project TEXT NOT NULL,
                vm_state TEXT NOT NULL,
                task_state TEXT NOT NULL,
                power_state TEXT NOT NULL,
                fault TEXT NOT NULL DEFAULT '',
                host TEXT REFERENCES host(name),
                image_id TEXT NOT NULL,
                image_name TEXT NOT NULL,
                flavor TEXT NOT NULL,
                vcpus INTEGER NOT NULL,
                ram_mb INTEGER NOT NULL,
                disk_gb INTEGER NOT NULL,
                created DOUBLE NOT NULL,
                domain_xml TEXT NOT NULL DEFAULT '',
                delete_requested INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX instance_host ON instance(host);
            CREATE TABLE fixed_ip (
                network TEXT NOT NULL REFERENCES network(name),
                address INTEGER NOT NULL,
                mac TEXT NOT NULL UNIQUE,
                instance_id TEXT NOT NULL REFERENCES instance(id) ON DELETE CASCADE,
                PRIMARY KEY (network, address));
            CREATE INDEX fixed_ip_instance ON fixed_ip(instance_id);
            CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
            """)
        }
        m.registerMigration("v2-host-zone") { db in
            try db.execute(sql: "ALTER TABLE host ADD COLUMN availability_zone TEXT NOT NULL DEFAULT 'nova'")
        }
        m.registerMigration("v3-server-groups") { db in
            try db.execute(sql: """
            CREATE TABLE server_group (
                name TEXT PRIMARY KEY NOT NULL,
                policy TEXT NOT NULL,
                owner_uid INTEGER NOT NULL);
            ALTER TABLE instance ADD COLUMN group_name TEXT REFERENCES server_group(name);
            """)
        }
        m.registerMigration("v4-instance-lock") { db in
            try db.execute(sql: "ALTER TABLE instance ADD COLUMN locked INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v5-instance-zone") { db in
            try db.execute(sql: "ALTER TABLE instance ADD COLUMN availability_zone TEXT")
        }
        m.registerMigration("v6-tasks-and-resize") { db in
            // Nova's instance_actions as a work queue: every request is a row written in the
            // transaction that changes the instance's task_state; `step` follows task_state.
            // No foreign key: a finished task outlives its deleted instance as history.
            try db.execute(sql: """
            CREATE TABLE task (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                instance_id TEXT NOT NULL,
                instance_name TEXT NOT NULL,
                kind TEXT NOT NULL,
                argument TEXT NOT NULL DEFAULT '',
                state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','cancelled','interrupted')),
                step TEXT NOT NULL DEFAULT '',
                created DOUBLE NOT NULL,
                updated DOUBLE NOT NULL,
                result TEXT NOT NULL DEFAULT '');
            CREATE INDEX task_open ON task(instance_id, state);
            ALTER TABLE instance ADD COLUMN old_flavor TEXT;
            ALTER TABLE instance ADD COLUMN old_vcpus INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE instance ADD COLUMN old_ram_mb INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE instance ADD COLUMN old_disk_gb INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE instance ADD COLUMN old_host TEXT REFERENCES host(name);
            ALTER TABLE instance ADD COLUMN old_vm_state TEXT;
            ALTER TABLE instance ADD COLUMN resized_at DOUBLE;
            """)
            // Builds and deletes under way when this schema arrived get their task rows.
            try db.execute(sql: """
            INSERT INTO task (instance_id, instance_name, kind, state, step, created, updated)
            SELECT id, name, CASE WHEN delete_requested THEN 'delete' ELSE 'build' END, 'queued', task_state, created, created
            FROM instance WHERE delete_requested OR vm_state = 'building';
            """)
        }
        m.registerMigration("v7-network-manager") { db in
            // nova-network's networks columns, its floating_ips table (auto_assigned as Nova
            // has it: auto-allocated addresses die with their instance) and security groups.
            try db.execute(sql: """
            ALTER TABLE network ADD COLUMN dns TEXT NOT NULL DEFAULT '';
            ALTER TABLE network ADD COLUMN bridge TEXT NOT NULL DEFAULT 'br100';
            ALTER TABLE network ADD COLUMN bridge_interface TEXT NOT NULL DEFAULT '';
            ALTER TABLE network ADD COLUMN vlan INTEGER;
            ALTER TABLE network ADD COLUMN dhcp_start TEXT NOT NULL DEFAULT '';
            ALTER TABLE network ADD COLUMN floating_range TEXT NOT NULL DEFAULT '';
            UPDATE network SET mode = 'flatdhcp' WHERE name = 'default' AND mode = 'flat' AND cidr = '10.0.0.0/16';
            CREATE TABLE floating_ip (
                address INTEGER PRIMARY KEY NOT NULL,
                pool TEXT NOT NULL REFERENCES network(name),
                project TEXT NOT NULL,
                owner_uid INTEGER NOT NULL,
                instance_id TEXT UNIQUE REFERENCES instance(id) ON DELETE SET NULL,
                auto_assigned INTEGER NOT NULL DEFAULT 0,
                created DOUBLE NOT NULL);
            CREATE INDEX floating_ip_project ON floating_ip(project);
            CREATE TABLE security_group (
                name TEXT PRIMARY KEY NOT NULL,
                rules TEXT NOT NULL DEFAULT '',
                owner_uid INTEGER NOT NULL DEFAULT 0);
            """)
        }
        m.registerMigration("v8-instance-security-groups") { db in
            // Nova's instance ↔ security group association, as the group names (one per line).
            try db.execute(sql: "ALTER TABLE instance ADD COLUMN security_groups TEXT NOT NULL DEFAULT 'default'")
        }
        m.registerMigration("v9-network-project") { db in
            // nova-network's networks.project_id: the project a VlanManager network belongs
            // to (NULL: unassigned, free for the next project that needs one).
            try db.execute(sql: "ALTER TABLE network ADD COLUMN project TEXT")
        }
        m.registerMigration("v10-typed-tasks") { db in
            // Tasks carry their typed request as JSON (`command`) instead of a verb in
            // `argument` that every reader parsed again; rows already on disk are converted.
            try db.execute(sql: "ALTER TABLE task ADD COLUMN command TEXT NOT NULL DEFAULT '{}'")
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for row in try Row.fetchAll(db, sql: "SELECT id, kind, argument FROM task") {
                let id: Int64 = row["id"]
                if let task = InstanceTask(legacyKind: row["kind"], argument: row["argument"]) {
                    let json = String(decoding: try encoder.encode(task), as: UTF8.self)
                    try db.execute(sql: "UPDATE task SET command = ? WHERE id = ?", arguments: [json, id])
                } else {
                    // A kind cloudfs never wrote: nothing could run it or show it.
                    try db.execute(sql: "DELETE FROM task WHERE id = ?", arguments: [id])
                }
            }
            try db.execute(sql: """
                ALTER TABLE task DROP COLUMN argument;
                CREATE INDEX instance_old_host ON instance(old_host);
                """)
        }
        m.registerMigration("v11-projects-and-quotas") { db in
            // Keystone's projects, users and role assignments, and Nova's/Cinder's per-project
            // quota limits (a missing row is the default limit). Everything already in the
            // state moves into the `default` project, owned by root; images stay visible to
            // all (Glance's `public`), new ones are `private` until shared.
            try db.execute(sql: """
            CREATE TABLE project (
                name TEXT PRIMARY KEY NOT NULL,
                gid INTEGER NOT NULL UNIQUE,
                created DOUBLE NOT NULL);
            CREATE TABLE user_account (
                name TEXT PRIMARY KEY NOT NULL,
                uid INTEGER NOT NULL UNIQUE,
                project TEXT NOT NULL DEFAULT '');
            CREATE TABLE membership (
                project TEXT NOT NULL REFERENCES project(name) ON DELETE CASCADE,
                user TEXT NOT NULL REFERENCES user_account(name) ON DELETE CASCADE,
                role TEXT NOT NULL,
                PRIMARY KEY (project, user));
            CREATE TABLE quota (
                project TEXT NOT NULL REFERENCES project(name) ON DELETE CASCADE,
                resource TEXT NOT NULL,
                hard_limit INTEGER NOT NULL,
                PRIMARY KEY (project, resource));
            INSERT INTO project (name, gid, created) VALUES ('default', \(ProjectRecord.firstGID), \(Date().timeIntervalSince1970));
            UPDATE instance SET project = 'default', owner_uid = 0;
            UPDATE floating_ip SET project = 'default', owner_uid = 0;
            ALTER TABLE image ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
            ALTER TABLE image ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
            ALTER TABLE image ADD COLUMN shared_with TEXT NOT NULL DEFAULT '';
            UPDATE image SET owner_uid = 0;
            ALTER TABLE server_group ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
            UPDATE server_group SET owner_uid = 0;
            ALTER TABLE security_group ADD COLUMN project TEXT NOT NULL DEFAULT '';
            UPDATE security_group SET project = 'default', owner_uid = 0 WHERE name != 'default';
            CREATE INDEX instance_project ON instance(project);
            CREATE INDEX instance_group ON instance(group_name);
            ALTER TABLE instance ADD COLUMN locked_by TEXT;
            UPDATE instance SET locked_by = 'admin' WHERE locked = 1;
            """)
            // The `default` project is the single-user cloud this state was until now: it
            // keeps having no limits but the floating IP quota it had. New projects get
            // Nova's and Cinder's defaults.
            for r in QuotaResource.allCases {
                try db.execute(sql: "INSERT INTO quota (project, resource, hard_limit) VALUES ('default', ?, -1)", arguments: [r.rawValue])
            }
            try db.execute(sql: """
                UPDATE quota SET hard_limit = COALESCE((SELECT CAST(value AS INTEGER) FROM setting WHERE key = 'quota.floating_ips'), 10)
                WHERE project = 'default' AND resource = 'floating_ips';
                DELETE FROM setting WHERE key = 'quota.floating_ips';
                """)
        }
        m.registerMigration("v12-volumes") { db in
            // Cinder's volumes (one attachment each, Nova's block device mapping folded in)
            // and snapshots. A device is unique per instance; a snapshot name per volume.
            try db.execute(sql: """
            CREATE TABLE volume (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL UNIQUE,
                project TEXT NOT NULL,
                owner_uid INTEGER NOT NULL,
                status TEXT NOT NULL,
                size_gb INTEGER NOT NULL CHECK (size_gb > 0),
                backend TEXT NOT NULL,
                source_kind TEXT NOT NULL DEFAULT '',
                source_name TEXT NOT NULL DEFAULT '',
                source_snapshot_id TEXT REFERENCES volume_snapshot(id),
                instance_id TEXT,
                device TEXT,
                attached_at DOUBLE,
                ever_attached BOOLEAN NOT NULL DEFAULT 0,
                target_size_gb INTEGER,
                previous_status TEXT,
                fault TEXT NOT NULL DEFAULT '',
                created DOUBLE NOT NULL);
            CREATE UNIQUE INDEX volume_device ON volume(instance_id, device) WHERE instance_id IS NOT NULL;
            CREATE INDEX volume_project ON volume(project);
            CREATE TABLE volume_snapshot (
                id TEXT PRIMARY KEY NOT NULL,
                volume_id TEXT NOT NULL REFERENCES volume(id),
                name TEXT NOT NULL,
                project TEXT NOT NULL,
                owner_uid INTEGER NOT NULL,
                status TEXT NOT NULL,
                size_gb INTEGER NOT NULL,
                fault TEXT NOT NULL DEFAULT '',
                created DOUBLE NOT NULL,
                UNIQUE (volume_id, name));
            CREATE INDEX volume_snapshot_project ON volume_snapshot(project);
            """)
        }
        m.registerMigration("v13-keypairs-launch") { db in
            // Nova's key_pairs (unique per user) and what an instance was launched with:
            // its key pair's public key (a copy: deleting the key pair keeps it), user data,
            // server metadata (JSON), the network asked for, and the host port forwarded to
            // its port 22 when networking is user-mode.
            try db.execute(sql: """
            CREATE TABLE keypair (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                owner_uid INTEGER NOT NULL,
                project TEXT NOT NULL,
                type TEXT NOT NULL,
                bits INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                public_key TEXT NOT NULL,
                created DOUBLE NOT NULL,
                UNIQUE (owner_uid, name));
            ALTER TABLE instance ADD COLUMN key_name TEXT;
            ALTER TABLE instance ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
            ALTER TABLE instance ADD COLUMN user_data TEXT NOT NULL DEFAULT '';
            ALTER TABLE instance ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
            ALTER TABLE instance ADD COLUMN requested_network TEXT;
            ALTER TABLE instance ADD COLUMN ssh_port INTEGER;
            ALTER TABLE instance ADD COLUMN config_drive BOOLEAN NOT NULL DEFAULT 1;
            CREATE UNIQUE INDEX instance_ssh_port ON instance(ssh_port) WHERE ssh_port IS NOT NULL;
            """)
        }
        m.registerMigration("v14-host-image-cache") { db in
            // The Glance images each remote host holds in its storage pool (Nova's image
            // cache on a compute node): a row is written only after the upload finished,
            // so a volume without one is a partial upload to redo.
            try db.execute(sql: """
            CREATE TABLE host_image (
                host TEXT NOT NULL,
                image_id TEXT NOT NULL,
                path TEXT NOT NULL,
                cached DOUBLE NOT NULL,
                PRIMARY KEY (host, image_id));
            """)
        }
        m.registerMigration("v15-migrations") { db in
            // Nova's migrations table: one row per move of an instance between hosts,
            // written when it starts and finished with its outcome.
            try db.execute(sql: """
            CREATE TABLE migration (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                instance_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                source TEXT NOT NULL,
                dest TEXT NOT NULL,
                status TEXT NOT NULL,
                started DOUBLE NOT NULL,
                finished DOUBLE,
                detail TEXT NOT NULL DEFAULT '');
            CREATE INDEX migration_instance ON migration(instance_id);
            """)
        }
        m.registerMigration("v16-host-agent") { db in
            // The host's agent (`cloudfs agent`) address, A.B.C.D:PORT; empty: none.
            try db.execute(sql: "ALTER TABLE host ADD COLUMN agent TEXT NOT NULL DEFAULT ''")
        }
        registerUsageCounters(&m)
        return m
    }
}
