// The store's schema and how it evolves: the base schema (version 1, as first released) and the
// numbered migrations after it. Private to psa::store.
//
// Every schema change from version 1 on is one migration: a number, a name, its SQL, and
// whether the release before it can still open a database it has migrated. Opening a store
// runs the migrations it lacks in order, each in its own transaction together with the new
// version number, so a crash (SIGKILL, power cut) at any point leaves the database at the
// version before or after a migration, never between; the next open finishes the job.
//
// meta holds `schema_level` (the last migration applied; absent means 1) and `schema_version`
// (the oldest level whose code can use this database). Releases before migrations existed
// check `schema_version == 1` exactly, so keeping it at 1 lets them open a database that has
// only been migrated compatibly. A migration that only adds what older code does not look at
// (a table, an index) keeps schema_version, so a rollback of the agent by one release opens the
// store in place. One that changes what older code reads raises schema_version to its own
// level; such changes ship in two releases (the first learns to read the new layout, the
// second migrates), so a one-release rollback still opens the store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "psa/store/log.h"
#include "psa/store/result.h"
#include "sqlite_db.h"

namespace psa::store::migrations {

struct Migration {
  int64_t level;              ///< the schema level this migration produces (2, 3, ...)
  const char* name;           ///< short, for logs and the audit trail
  bool readable_by_previous;  ///< the release before can still use the migrated database
  const char* sql;            ///< one or more statements, run inside the migration's transaction
};

/// Every migration, in order (levels 2, 3, ... without gaps).
const std::vector<Migration>& all();

/// The schema level this code writes.
int64_t latestLevel();

struct SchemaLevel {
  int64_t level = 0;       ///< meta schema_level: the last migration applied
  int64_t min_reader = 1;  ///< meta schema_version: the oldest level that can use it
};

/// The database's level from meta. Errc::invalid_argument when meta has no schema_version.
Result<SchemaLevel> readLevel(Db& db);

/// Whether this code may use a database at `level`: an older one (it will be migrated), its own,
/// or a newer one whose min_reader this code meets. Otherwise Errc::invalid_argument saying
/// which release the database needs.
Status checkUsable(const SchemaLevel& level, const std::filesystem::path& db_path);

/// Creates the version 1 tables and meta (schema_version 1, created_at) in one transaction.
Status createBase(Db& db, int64_t now_ms);

/// What migrate() did.
struct Migrated {
  int64_t from = 0;
  int64_t to = 0;
  std::vector<std::string> names;
};

/// Runs every migration newer than the database's level, each in its own transaction
/// (BEGIN IMMEDIATE ... level bump ... COMMIT). Test fault points (psa/store/test_fault.h):
/// "store.migration.applied" after a migration's SQL, "store.migration.versioned" after the
/// level bump, both before COMMIT.
Result<Migrated> migrate(Db& db, const std::filesystem::path& db_path, log::Logger& log);

}  // namespace psa::store::migrations
