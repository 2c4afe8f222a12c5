//! Rebuilds the binary when a migration is added. `sqlx::migrate!` embeds the migrations at
//! compile time, and Cargo then watches only the migration files that existed at the last build,
//! so a new migration alone would leave a binary that never applies it. The sqlx documentation
//! of `migrate!` recommends this build script.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
