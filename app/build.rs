//! Rebuilds the app when a migration file is added or removed; editing one is
//! tracked already, because `embed_migrations!` includes each file's bytes.

fn main() {
    println!("cargo:rerun-if-changed=../supabase/migrations");
}
